// Share from the board straight to the sharing API (issue 20, ADR 0014): the page never holds the
// person's token. It asks the console for a single-use share ticket for this item and network, posts
// the ticket with the message to sharing itself (CORS), and opens the network's share dialog with the
// tracked link. Whatever fails, the form is submitted the classic way (the console shares for it).
(function () {
  "use strict";

  function csrfOf(form) {
    var field = form.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }

  function classic(form) {
    form.dataset.direct = "off";
    form.submit();
  }

  async function share(form) {
    var fields = new FormData(form);
    var asked = await fetch("/share/ticket", {
      method: "POST",
      headers: { "X-CSRF-Token": csrfOf(form) },
      body: new URLSearchParams({ content_id: fields.get("content_id"), network: fields.get("network") }),
      credentials: "same-origin",
    });
    if (!asked.ok) throw new Error("no ticket");
    var ticket = await asked.json();
    var body = { ticket: ticket.ticket };
    var message = (fields.get("message") || "").trim();
    if (message) body.message = message;
    var made = await fetch(ticket.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    });
    if (made.status !== 200 && made.status !== 201) throw new Error("not shared: " + made.status);
    var created = await made.json();
    if (typeof created.intent_url !== "string" || created.intent_url.indexOf("https://") !== 0) {
      throw new Error("no share dialog");
    }
    window.location.assign(created.intent_url);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("share")) return;
    if (form.dataset.direct === "off" || !window.fetch) return; // the classic way
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    share(form).catch(function () {
      if (button) button.disabled = false;
      classic(form); // the console says why, or shares for it
    });
  });
})();
