"""The page renders the newest frame of an answer, not every frame it missed.

Gradio's page reads all of its events' messages from one stream
(``/queue/data``) and runs each message in a task of its own (``setTimeout``),
rendering the page after each. A frame of a long chat costs the browser tens of
milliseconds, several times that when other programs hold the CPU; the server
goes on sending frames at its own pace, so a page that fell behind stepped
through every frame it missed: after 1.5 s busy, 21 renders to catch up (the
browser test); with two busy CPUs, the last words of a 2-second answer in a
200-message chat showed up to 1.5 s after the answer ended.

This script, in the page's head before Gradio's own code runs, wraps the
stream: the messages that arrived together (a page busy rendering reads
everything that came meanwhile as one chunk) are passed on as they are, except
that consecutive frames of one answer are merged into one. After an event's
first frame Gradio sends each frame as edits to the one before
(``[action, path, value]`` per output, applied in order), so the edits of
several frames, one after the other, are one frame: the page applies them all
and renders once. An event's first frame (whole values), its last message and
anything that is not a plain frame go through untouched.
"""

from __future__ import annotations

COALESCE_JS = """
(() => {
  if (window.__chatuiCoalesce) return;
  window.__chatuiCoalesce = { coalesce: (text) => coalesce(text, new Set()) };  // for tests
  const nativeFetch = window.fetch.bind(window);
  window.fetch = async function (input, init) {
    const response = await nativeFetch(input, init);
    const url = typeof input === 'string' ? input : (input && input.url) || String(input);
    if (!url.includes('/queue/data') || !response.ok || !response.body) return response;
    return new Response(coalesced(response.body),
                        { status: response.status, statusText: response.statusText,
                          headers: response.headers });
  };

  function frameOf(block, started) {
    // A frame that can be merged into the one before: edits, after its event's first frame.
    if (!block.startsWith('data: ') || block.includes('\\n')) return null;
    let message;
    try { message = JSON.parse(block.slice(6)); } catch (error) { return null; }
    if (!message || message.msg !== 'process_generating' || !message.success
        || !message.event_id || !message.output || !Array.isArray(message.output.data)) {
      if (message && message.msg === 'process_completed') started.delete(message.event_id);
      return null;
    }
    if (!started.has(message.event_id)) { started.add(message.event_id); return null; }
    if (!message.output.data.every(Array.isArray)) return null;
    return message;
  }

  function merged(frames) {
    const last = frames[frames.length - 1];
    const data = last.output.data.map(
      (_, i) => [].concat(...frames.map(f => f.output.data[i] || [])));
    const output = { ...last.output, data };
    const changed = frames.flatMap(f => f.output.changed_state_ids || []);
    if (changed.length) output.changed_state_ids = [...new Set(changed)];
    return 'data: ' + JSON.stringify({ ...last, output });
  }

  function coalesce(text, started) {
    // ``text``: whole SSE messages, each ending with a blank line.
    const out = [];
    let run = [];
    const flush = () => {
      if (run.length === 1) out.push(run[0].block);
      else if (run.length) out.push(merged(run.map(r => r.frame)));
      run = [];
    };
    for (const block of text.split('\\n\\n')) {
      if (!block) continue;
      const frame = frameOf(block, started);
      if (frame && run.length && run[0].frame.event_id === frame.event_id
          && run[0].frame.output.data.length === frame.output.data.length) {
        run.push({ block, frame });
        continue;
      }
      flush();
      if (frame) run.push({ block, frame });
      else out.push(block);
    }
    flush();
    return out.map(block => block + '\\n\\n').join('');
  }

  function coalesced(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    const started = new Set();  // events whose first frame (whole values) has gone by
    let rest = '';
    return new ReadableStream({
      async pull(controller) {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            rest += decoder.decode();
            if (rest) controller.enqueue(encoder.encode(rest));
            controller.close();
            return;
          }
          rest += decoder.decode(value, { stream: true });
          const end = rest.lastIndexOf('\\n\\n');
          if (end < 0) continue;
          const whole = rest.slice(0, end + 2);
          rest = rest.slice(end + 2);
          let text;
          try { text = coalesce(whole, started); } catch (error) { text = whole; }
          controller.enqueue(encoder.encode(text));
          return;
        }
      },
      cancel(reason) { return reader.cancel(reason); },
    });
  }
})();
"""


def coalesce_head() -> str:
    """The ``<script>`` for the page's head (``gr.mount_gradio_app(head=...)``)."""
    return f"<script>{COALESCE_JS}</script>"
