/* django-byok: progressive enhancement for the API-keys pages.
 *
 * Without this file every action still works through plain forms. With it: the
 * add-key dialog, inline errors, toasts, show/hide and copy of a key, a confirm
 * dialog for removing, and category tabs that filter without reloading.
 * No inline script, no dependency: CSP-friendly.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-byok-root]");
  if (!root) {
    return;
  }
  var STORED_TOAST = "byok-toast";

  /* Translated texts come from the page: data-text-* on the root element. */
  function text(name) {
    return root.getAttribute("data-text-" + name) || name;
  }
  var toasts = root.querySelector("[data-byok-toasts]");
  var revealed = {};

  function csrfToken() {
    var input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  /* Toasts: the server's messages become toasts too. */
  function toast(text, level) {
    if (!toasts || !text) {
      return;
    }
    var item = document.createElement("p");
    item.className = "byok-toast byok-toast-" + (level || "info");
    item.textContent = text;
    toasts.appendChild(item);
    window.setTimeout(function () {
      item.remove();
    }, 8000);
  }

  function reloadWith(text, level) {
    try {
      window.sessionStorage.setItem(STORED_TOAST, JSON.stringify({ text: text, level: level }));
    } catch (error) {
      /* storage unavailable: the page still reloads */
    }
    window.location.reload();
  }

  if (toasts) {
    toasts.classList.add("byok-floating");
    try {
      var stored = window.sessionStorage.getItem(STORED_TOAST);
      window.sessionStorage.removeItem(STORED_TOAST);
      if (stored) {
        var parsed = JSON.parse(stored);
        toast(parsed.text, parsed.level);
      }
    } catch (error) {
      /* nothing stored */
    }
    Array.prototype.forEach.call(toasts.children, function (item) {
      window.setTimeout(function () {
        item.remove();
      }, 8000);
    });
  }

  /* Dialogs: focus moves in, stays in (showModal makes the page inert), and returns.
   * While one is open the toasts live inside it: outside, they would be inert and
   * under its backdrop. */
  var opener = null;
  var toastsHome = toasts && toasts.parentNode;
  var toastsNext = toasts && toasts.nextSibling;

  function openDialog(dialog, from) {
    opener = from || null;
    dialog.showModal();
    if (toasts) {
      dialog.appendChild(toasts);
    }
    var first = dialog.querySelector("input:not([type=hidden]), select, button");
    if (first) {
      first.focus();
    }
  }

  root.addEventListener("close", function (event) {
    if (event.target.tagName !== "DIALOG") {
      return;
    }
    if (toasts && toasts.parentNode === event.target) {
      toastsHome.insertBefore(toasts, toastsNext);
    }
    if (opener) {
      opener.focus();
      opener = null;
    }
  }, true);

  root.addEventListener("click", function (event) {
    var target = event.target.closest("[data-byok-open], [data-byok-close], [data-byok-remove], [data-byok-reveal], [data-byok-copy], [data-byok-tab]");
    if (!target) {
      return;
    }
    if (target.hasAttribute("data-byok-open")) {
      var dialog = document.getElementById(target.getAttribute("data-byok-open"));
      if (dialog && dialog.showModal) {
        event.preventDefault();
        openDialog(dialog, target);
      }
    } else if (target.hasAttribute("data-byok-close")) {
      target.closest("dialog").close();
    } else if (target.hasAttribute("data-byok-remove")) {
      var confirm = document.getElementById("byok-confirm");
      if (confirm && confirm.showModal) {
        event.preventDefault();
        var form = confirm.querySelector("form");
        form.action = target.getAttribute("data-byok-remove");
        confirm.querySelector("[data-byok-confirm-label]").textContent = target.getAttribute("data-byok-label");
        openDialog(confirm, target);
      }
    } else if (target.hasAttribute("data-byok-reveal")) {
      toggleReveal(target);
    } else if (target.hasAttribute("data-byok-copy")) {
      copyKey(target);
    } else if (target.hasAttribute("data-byok-tab")) {
      event.preventDefault();
      showCategory(target.getAttribute("data-byok-tab"));
    }
  });

  /* Forms: posted with fetch; the server answers JSON instead of redirecting. */
  root.addEventListener("submit", function (event) {
    var form = event.target;
    var kind = form.getAttribute("data-byok-form") || (form.hasAttribute("data-byok-confirm-form") ? "remove" : null);
    if (!kind) {
      return;
    }
    event.preventDefault();
    var buttons = form.querySelectorAll("button");
    if (form.getAttribute("aria-busy") === "true") {
      return; /* a second click while the first is on its way adds nothing */
    }
    form.setAttribute("aria-busy", "true");
    buttons.forEach(function (button) {
      button.disabled = true;
    });
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().catch(function () {
          return { ok: false, message: text("server-error") + " (" + response.status + ")" };
        });
      })
      .then(function (data) {
        handleAnswer(kind, form, data);
      })
      .catch(function () {
        toast(text("offline"), "error");
      })
      .finally(function () {
        form.removeAttribute("aria-busy");
        buttons.forEach(function (button) {
          button.disabled = false;
        });
      });
  });

  function handleAnswer(kind, form, data) {
    if (kind === "add") {
      if (data.saved) {
        /* Saved, perhaps with a warning (the provider could not confirm the key). */
        reloadWith(data.message, data.level);
      } else {
        showErrors(form, data.errors || {});
        toast(data.message, "error");
      }
    } else if (kind === "remove") {
      reloadWith(data.message, data.ok ? "success" : "error");
    } else if (kind === "dismiss") {
      var banner = root.querySelector("[data-byok-banner]");
      if (banner) {
        banner.remove();
      }
    } else if (kind === "test") {
      var row = form.closest("[data-byok-key]");
      var badge = row && row.querySelector("[data-byok-status]");
      if (badge && data.status) {
        badge.textContent = data.status_label || data.status;
        badge.className = "byok-badge byok-status-" + data.status;
      }
      toast(data.message, data.ok ? "success" : "warning");
    }
  }

  function showErrors(form, errors) {
    form.querySelectorAll(".byok-errors").forEach(function (list) {
      list.textContent = "";
    });
    form.querySelectorAll(".byok-field-invalid").forEach(function (field) {
      field.classList.remove("byok-field-invalid");
    });
    var general = form.querySelector("[data-byok-form-errors]");
    general.textContent = "";
    var firstInvalid = null;
    Object.keys(errors).forEach(function (name) {
      var field = form.querySelector('[data-byok-field="' + name + '"]');
      errors[name].forEach(function (error) {
        var item = document.createElement(field ? "li" : "p");
        item.textContent = error.message;
        (field ? field.querySelector(".byok-errors") : general).appendChild(item);
      });
      if (field) {
        field.classList.add("byok-field-invalid");
        firstInvalid = firstInvalid || field.querySelector("input, select");
      }
    });
    if (firstInvalid) {
      firstInvalid.focus();
    }
  }

  /* Show and copy: the plaintext comes from the REST API's reveal endpoint (audited). */
  function fetchSecret(url) {
    if (revealed[url]) {
      return Promise.resolve(revealed[url]);
    }
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          throw new Error(data.detail || text("show-failed"));
        }
        var value = data.key;
        if (value === undefined) {
          value = Object.keys(data.credentials).map(function (name) {
            return name + ": " + data.credentials[name];
          }).join("\n");
        }
        revealed[url] = value;
        return value;
      });
    });
  }

  function toggleReveal(button) {
    var code = button.closest("[data-byok-key]").querySelector("[data-byok-value]");
    if (button.getAttribute("aria-pressed") === "true") {
      code.textContent = code.getAttribute("data-masked");
      button.setAttribute("aria-pressed", "false");
      button.textContent = button.getAttribute("data-show-label");
      return;
    }
    fetchSecret(button.getAttribute("data-byok-reveal")).then(function (value) {
      code.textContent = value;
      button.setAttribute("aria-pressed", "true");
      button.textContent = button.getAttribute("data-hide-label");
    }).catch(function (error) {
      toast(error.message, "error");
    });
  }

  function copyKey(button) {
    fetchSecret(button.getAttribute("data-byok-copy")).then(function (value) {
      return navigator.clipboard.writeText(value);
    }).then(function () {
      toast(button.getAttribute("data-copied-label"), "success");
    }).catch(function (error) {
      toast(error.message || text("copy-failed"), "error");
    });
  }

  /* Category tabs filter the grid in place (the links still work without this). */
  function showCategory(category) {
    root.querySelectorAll("[data-byok-tab]").forEach(function (tab) {
      if (tab.getAttribute("data-byok-tab") === category) {
        tab.setAttribute("aria-current", "page");
      } else {
        tab.removeAttribute("aria-current");
      }
    });
    root.querySelectorAll("[data-byok-card]").forEach(function (card) {
      card.hidden = Boolean(category) && card.getAttribute("data-category") !== category;
    });
    var url = new URL(window.location.href);
    if (category) {
      url.searchParams.set("category", category);
    } else {
      url.searchParams.delete("category");
    }
    window.history.replaceState(null, "", url);
  }

  /* Buttons that only work with JavaScript stay hidden without it. */
  root.querySelectorAll("[data-byok-reveal], [data-byok-copy]").forEach(function (button) {
    button.hidden = false;
  });
})();
