/* The process diagram of a case: bpmn-js draws the deployed BPMN file, and the completed,
   active and failed elements get markers (classes styled in case.css). Loaded as a file, not
   inline, so the page's Content-Security-Policy needs no 'unsafe-inline'. */
(function () {
  "use strict";

  var MARKERS = { completed: "qg-completed", active: "qg-active", failed: "qg-failed" };

  function show(container) {
    var viewer = new window.BpmnJS({ container: container });
    return fetch(container.dataset.src, {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        return viewer.importXML(data.xml).then(function () {
          var canvas = viewer.get("canvas");
          var registry = viewer.get("elementRegistry");
          canvas.zoom("fit-viewport");
          Object.keys(MARKERS).forEach(function (kind) {
            (data[kind] || []).forEach(function (id) {
              // An id without a shape (e.g. drawn in another diagram) is skipped.
              if (registry.get(id)) {
                canvas.addMarker(id, MARKERS[kind]);
              }
            });
            container.dataset[kind] = (data[kind] || []).join(" ");
          });
          container.dataset.state = "ready";
        });
      })
      .catch(function (error) {
        container.dataset.state = "error";
        var message = document.createElement("p");
        message.className = "flash flash-error";
        message.textContent = container.dataset.error + " (" + error.message + ")";
        container.appendChild(message);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("diagram");
    if (container && window.BpmnJS) {
      show(container);
    } else if (container) {
      container.dataset.state = "error";
    }
  });
})();
