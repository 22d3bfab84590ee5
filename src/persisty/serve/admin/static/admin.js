// persisty admin: enhancements only (every page works without this script): the viewer's
// time zone, the theme toggle, confirmation dialogs, select-all and relation type-ahead.
(function () {
  "use strict";
  var root = document.documentElement;
  var base = root.getAttribute("data-base") || "";
  root.classList.add("js");

  // The server renders and reads datetimes in the zone this cookie names.
  var zone = "UTC";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* UTC */ }
  var cookiePath = "; path=" + (base || "/") + "; SameSite=Lax; max-age=31536000";
  if (root.getAttribute("data-tz") !== zone) {
    document.cookie = "persisty_admin_tz=" + encodeURIComponent(zone) + cookiePath;
    var flag = "persisty-tz-reload:" + location.pathname;
    var hasForm = document.querySelector("[data-item-form], .filters");
    if (hasForm && !sessionStorage.getItem(flag)) {
      sessionStorage.setItem(flag, "1");
      location.reload();
      return;
    }
  }

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    // Theme toggle: switch at once, and remember it (the same form posts without JS).
    var toggle = document.querySelector("[data-theme-toggle]");
    if (toggle) {
      toggle.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var dark = getComputedStyle(root).colorScheme.indexOf("dark") !== -1;
        var next = dark ? "light" : "dark";
        root.setAttribute("data-theme", next);
        var data = new FormData(toggle);
        data.set("theme", next);
        fetch(toggle.action, { method: "POST", body: new URLSearchParams(data),
          credentials: "same-origin", redirect: "manual" }).catch(function () {});
      });
    }

    // Dialogs: links with data-dialog open the <dialog> instead of the confirmation page.
    document.querySelectorAll("[data-dialog]").forEach(function (link) {
      var dialog = document.getElementById(link.getAttribute("data-dialog"));
      if (!dialog || typeof dialog.showModal !== "function") { return; }
      link.addEventListener("click", function (ev) { ev.preventDefault(); dialog.showModal(); });
    });
    document.querySelectorAll("dialog [data-close]").forEach(function (b) {
      b.addEventListener("click", function () { b.closest("dialog").close(); });
    });

    // Select all on the page, and a dialog before a bulk delete.
    var bulk = document.querySelector("[data-bulk]");
    if (bulk) {
      var boxes = function () { return bulk.querySelectorAll("input[name=key]"); };
      var all = bulk.querySelector("[data-select-all]");
      if (all) {
        all.addEventListener("change", function () {
          boxes().forEach(function (b) { b.checked = all.checked; });
        });
      }
      var del = bulk.querySelector("[data-bulk-delete]");
      var dialog = document.getElementById("bulk-dialog");
      if (del && dialog && typeof dialog.showModal === "function") {
        del.addEventListener("click", function (ev) {
          var n = Array.prototype.filter.call(boxes(), function (b) { return b.checked; }).length;
          if (!n) { return; }
          ev.preventDefault();
          dialog.querySelector("[data-bulk-message]").textContent =
            "Delete " + n + " selected item" + (n === 1 ? "" : "s") + "?";
          dialog.showModal();
        });
        dialog.querySelector("[data-bulk-confirm]").addEventListener("click", function () {
          var add = function (name, value) {
            var i = document.createElement("input");
            i.type = "hidden"; i.name = name; i.value = value; bulk.appendChild(i);
          };
          add("action", "delete");
          add("confirm", "yes");
          dialog.close();
          bulk.submit();
        });
      }
    }

    // Relation pickers: up to 20 suggestions from the server as the user types.
    document.querySelectorAll("input[data-suggest]").forEach(function (input) {
      var list = document.getElementById(input.getAttribute("list"));
      var timer = null;
      var last = null;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var q = input.value;
          if (q === last) { return; }
          last = q;
          fetch(input.getAttribute("data-suggest") + "?q=" + encodeURIComponent(q),
                { credentials: "same-origin", headers: { Accept: "application/json" } })
            .then(function (r) { return r.ok ? r.json() : { items: [] }; })
            .then(function (data) {
              if (input.value !== q) { return; }
              list.textContent = "";
              data.items.forEach(function (s) {
                var o = document.createElement("option");
                o.value = s.key;
                if (s.label) { o.label = s.label; }
                list.appendChild(o);
              });
            })
            .catch(function () {});
        }, 150);
      });
    });
  });
})();
