// The live %%claude view's front end (see live_widget.py): it keeps what the kernel sent, and
// the kernel sends only what changed. State lives here, per widget, so every view of it (the
// same output shown twice) shows the same; a view made late builds from it.
export default () => {
  // Per section (t: thinking, a: answer): finished HTML, appended once; the tail, still live.
  const sections = { t: { done: [], tail: "" }, a: { done: [], tail: "" } };
  const state = { s: "", f: "" }; // the status line (text) and what goes under the answer
  const views = new Set();

  // A step [offset, suffix, cut]: the tail is cut at offset (-1: everything is dropped first),
  // suffix is appended, and its first cut code units become finished HTML.
  const apply = (section, [offset, suffix, cut]) => {
    if (offset < 0) {
      section.done = [];
      section.tail = suffix;
    } else {
      section.tail = section.tail.slice(0, offset) + suffix;
    }
    const finished = section.tail.slice(0, cut);
    section.tail = section.tail.slice(cut);
    if (finished) section.done.push(finished);
    return { reset: offset < 0, finished };
  };

  return {
    initialize({ model }) {
      const receive = (message) => {
        const changes = {};
        for (const key of ["t", "a"]) {
          if (message[key]) changes[key] = apply(sections[key], message[key]);
        }
        if ("s" in message) state.s = message.s;
        if ("f" in message) state.f = message.f;
        for (const view of views) view(message, changes);
      };
      model.on("msg:custom", receive);
      return () => model.off("msg:custom", receive);
    },

    render({ el }) {
      el.innerHTML =
        '<div class="claude-status" style="font-size: 85%; ' +
        'color: var(--jp-ui-font-color2, #777)"></div>' +
        '<details class="claude-thinking" hidden><summary>Thinking</summary>' +
        '<div class="claude-body jp-RenderedHTMLCommon"></div></details>' +
        '<div class="claude-answer claude-body jp-RenderedHTMLCommon"></div>' +
        '<div class="claude-after jp-RenderedHTMLCommon"></div>';
      const status = el.querySelector(".claude-status");
      const thinking = el.querySelector(".claude-thinking");
      const after = el.querySelector(".claude-after");
      const bodies = { t: thinking.querySelector(".claude-body"), a: el.querySelector(".claude-answer") };
      const lives = {};
      // A section drawn whole from the state: when the view is made, and after a reset.
      const draw = (key) => {
        const live = document.createElement("div");
        live.className = "claude-live";
        live.innerHTML = sections[key].tail;
        bodies[key].replaceChildren(live);
        for (const html of sections[key].done) live.insertAdjacentHTML("beforebegin", html);
        lives[key] = live;
      };
      const show = () => {
        status.textContent = state.s;
        after.innerHTML = state.f;
        thinking.hidden = !sections.t.done.length && !sections.t.tail;
      };
      draw("t");
      draw("a");
      show();
      const update = (message, changes) => {
        for (const [key, change] of Object.entries(changes)) {
          if (change.reset) {
            draw(key);
            continue;
          }
          if (change.finished) lives[key].insertAdjacentHTML("beforebegin", change.finished);
          lives[key].innerHTML = sections[key].tail;
        }
        if ("s" in message) status.textContent = state.s;
        if ("f" in message) after.innerHTML = state.f;
        thinking.hidden = !sections.t.done.length && !sections.t.tail;
      };
      views.add(update);
      return () => views.delete(update);
    },
  };
};
