// Small progressive enhancement; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Send the session's CSRF token with same-origin fetch() calls made by page scripts.
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && window.fetch) {
    const token = meta.getAttribute("content");
    const original = window.fetch.bind(window);
    window.fetch = (input, init = {}) => {
      const headers = new Headers(init.headers || {});
      if (!headers.has("X-CSRF-Token")) headers.set("X-CSRF-Token", token);
      return original(input, { ...init, headers, credentials: "same-origin" });
    };
  }
  // Move focus to the error summary so that screen readers announce it at once.
  const errors = document.getElementById("errors") || document.getElementById("problem");
  if (errors) {
    errors.setAttribute("tabindex", "-1");
    errors.focus();
  }
});
