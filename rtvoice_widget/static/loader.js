// loader.js
var bundles = globalThis.__rtvoiceWidgetBundles || (globalThis.__rtvoiceWidgetBundles = /* @__PURE__ */ new Map());
function load(model) {
  const hash = model.get("_front_end");
  if (!bundles.has(hash)) {
    const loading = new Promise((resolve, reject) => {
      const done = (text) => {
        model.off("msg:custom", onMessage);
        const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
        import(
          /* webpackIgnore: true */
          url
        ).then((m) => resolve(m.default), reject);
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
var loader_default = {
  // anywidget gives initialize() 2 s: it starts the load and returns at once (the kernel may
  // be busy running a cell); the front end's own initialize runs once the bundle is here.
  initialize({ model }) {
    let cleanup = null;
    let disposed = false;
    load(model).then((widget) => widget.initialize ? widget.initialize({ model }) : void 0).then((done) => {
      if (disposed && typeof done === "function") done();
      else cleanup = done;
    }).catch(() => {
    });
    return () => {
      disposed = true;
      if (typeof cleanup === "function") cleanup();
    };
  },
  async render({ model, el }) {
    el.textContent = "Loading the voice chat… (it needs its running kernel)";
    let widget;
    try {
      widget = await load(model);
    } catch (err) {
      el.textContent = `rtvoice-widget could not load its front end: ${err && err.message ? err.message : err}`;
      return void 0;
    }
    el.textContent = "";
    return widget.render({ model, el });
  }
};
export {
  loader_default as default
};
