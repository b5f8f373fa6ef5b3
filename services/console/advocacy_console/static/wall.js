// The wall: the leaderboard over Server-Sent Events, straight from the gamification API.
// EventSource cannot send a token, so each connection starts with a fresh one-use ticket, fetched
// through the console (which holds the person's token); a dropped or ended stream gets a new ticket.
(function () {
  "use strict";
  var table = document.getElementById("board");
  var live = document.getElementById("live");
  var body = table.tBodies[0];
  var streamUrl = table.dataset.streamUrl;
  var windowName = table.dataset.window;
  var csrf = table.dataset.csrf;
  var source = null;
  var delay = 1000; // doubles on each failure, to 30 s; back to 1 s once a message arrives

  function state(name, text) {
    live.dataset.state = name;
    live.textContent = text;
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    return td;
  }

  function render(board) {
    var rows = document.createDocumentFragment();
    (board.items || []).forEach(function (item) {
      var tr = document.createElement("tr");
      tr.dataset.employee = item.employee_id || "";
      tr.appendChild(cell(item.rank));
      tr.appendChild(cell(item.name));
      tr.appendChild(cell(item.team));
      var points = cell(item.points);
      points.className = "points";
      tr.appendChild(points);
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
  }

  function retry() {
    if (source) { source.close(); source = null; }
    state("reconnecting", "Reconnecting…");
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  }

  function connect() {
    fetch("/wall/ticket", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { window.location.assign("/login"); throw new Error("logged out"); }
        if (!r.ok) { throw new Error("no ticket: " + r.status); }
        return r.json();
      })
      .then(function (t) {
        var url = streamUrl + "?window=" + encodeURIComponent(windowName) + "&ticket=" + encodeURIComponent(t.ticket);
        source = new EventSource(url);
        source.onopen = function () { state("live", "Live"); };
        // the stream names its messages "leaderboard" (a plain onmessage never sees them)
        source.addEventListener("leaderboard", function (e) {
          delay = 1000;
          state("live", "Live");
          render(JSON.parse(e.data));
        });
        // the server ends a stream when the token behind its ticket expires: start again
        source.addEventListener("end", retry);
        // a ticket opens one stream: EventSource's own reconnect would reuse a spent one
        source.onerror = retry;
      })
      .catch(function () { retry(); });
  }

  connect();
})();
