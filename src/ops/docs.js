// Renders the OpenAPI document into a readable list of operations. No frameworks, no CDN.
(function () {
  "use strict";
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function render(spec, filter) {
    var root = document.getElementById("ops");
    root.textContent = "";
    var methods = ["get", "post", "put", "patch", "delete"];
    Object.keys(spec.paths).sort().forEach(function (path) {
      var item = spec.paths[path];
      methods.forEach(function (m) {
        var op = item[m];
        if (!op) return;
        var hay = (path + " " + (op.summary || "")).toLowerCase();
        if (filter && hay.indexOf(filter) < 0) return;
        var sec = el("section", "op");
        var h = el("h3");
        h.appendChild(el("span", "method " + m, m));
        h.appendChild(el("span", "path", path));
        sec.appendChild(h);
        if (op.summary) sec.appendChild(el("p", "", op.summary));
        if (op.description) sec.appendChild(el("p", "muted", op.description));
        var t = el("table");
        var head = el("tr");
        ["Status", "Meaning", "Headers"].forEach(function (c) { head.appendChild(el("th", "", c)); });
        t.appendChild(head);
        Object.keys(op.responses).sort().forEach(function (code) {
          var r = op.responses[code];
          var tr = el("tr");
          tr.appendChild(el("td", "", code));
          tr.appendChild(el("td", "", r.description || ""));
          tr.appendChild(el("td", "muted", Object.keys(r.headers || {}).join(", ")));
          t.appendChild(tr);
        });
        sec.appendChild(t);
        root.appendChild(sec);
      });
    });
  }
  fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then(function (r) { return r.json(); })
    .then(function (spec) {
      document.getElementById("subtitle").textContent = spec.info.title + " " + spec.info.version;
      render(spec, "");
      document.getElementById("filter").addEventListener("input", function (e) {
        render(spec, e.target.value.toLowerCase());
      });
    })
    .catch(function () { document.getElementById("ops").textContent = "Could not load /openapi.json."; });
})();
