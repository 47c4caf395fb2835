// The widget's `_esm`: all that anywidget keeps in the widget state, and so all the front end a
// saved notebook carries. The front end itself (rtvoice_widget/static/widget.js, bundled by
// build.mjs) comes from the kernel as a custom message, which is never saved:
//
//   page -> kernel  {type: "front_end"}                      (asked once per page and bundle)
//   kernel -> page  {type: "front_end", hash} + [utf-8 text]  (also pushed as the widget is
//                                                              made: it may beat the request)
//
// `_front_end` (a trait) names the bundle by a hash of its text: every widget of a page that
// runs the same bundle imports it once.

const bundles = (globalThis.__rtvoiceWidgetBundles ||= new Map()); // hash -> Promise<module>

function load(model) {
  const hash = model.get("_front_end");
  if (!bundles.has(hash)) {
    const loading = new Promise((resolve, reject) => {
      const done = (text) => {
        model.off("msg:custom", onMessage);
        const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
        import(/* webpackIgnore: true */ url).then((m) => resolve(m.default), reject);
      };
      const onMessage = (msg, buffers) => {
        if (msg && msg.type === "front_end" && msg.hash === hash && buffers && buffers.length) done(buffers[0]);
      };
      model.on("msg:custom", onMessage);
      model.send({ type: "front_end" });
    });
    loading.catch(() => bundles.delete(hash));
    bundles.set(hash, loading);
  }
  return bundles.get(hash);
}

export default {
  // anywidget gives initialize() 2 s: it starts the load and returns at once (the kernel may
  // be busy running a cell); the front end's own initialize runs once the bundle is here.
  initialize({ model }) {
    let cleanup = null;
    let disposed = false;
    load(model)
      .then((widget) => (widget.initialize ? widget.initialize({ model }) : undefined))
      .then((done) => {
        if (disposed && typeof done === "function") done();
        else cleanup = done;
      })
      .catch(() => {}); // render() says why
    return () => {
      disposed = true;
      if (typeof cleanup === "function") cleanup();
    };
  },
  async render({ model, el }) {
    el.textContent = "Loading the voice chat\u2026 (it needs its running kernel)";
    let widget;
    try {
      widget = await load(model);
    } catch (err) {
      el.textContent = `rtvoice-widget could not load its front end: ${err && err.message ? err.message : err}`;
      return undefined;
    }
    el.textContent = "";
    return widget.render({ model, el });
  },
};
