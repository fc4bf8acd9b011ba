// swarmstream console: live updates over server-sent events (/events). No framework, no build.
// Everything from the server is set as text (textContent), never as markup.
"use strict";

(function () {
  const page = document.body.dataset.page;
  if (!["review", "approvals", "fleet"].includes(page)) return;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  const num = (v, d) => (v === null || v === undefined ? "-" : Number(v).toFixed(d));
  const pct = (v) => (v === null || v === undefined ? "-" : Math.round(v * 100) + "%");
  const usd = (v) => (v === null || v === undefined ? "-" : "$" + Number(v).toFixed(6));

  function syncQueue(selector, keys) {
    const wanted = new Set(keys);
    const shown = new Set();
    document.querySelectorAll(selector).forEach((el) => {
      shown.add(el.dataset.key);
      if (!wanted.has(el.dataset.key)) el.remove();  // decided, by anyone
    });
    const news = document.getElementById("queue-news");
    if (news) news.hidden = !keys.some((k) => !shown.has(k));
  }

  function fleet(data) {
    const models = document.getElementById("models");
    models.replaceChildren(...data.models.map((m) => {
      const tr = document.createElement("tr");
      tr.dataset.model = m.model;
      cell(tr, m.model);
      cell(tr, num(m.rps, 2));
      cell(tr, String(m.calls));
      cell(tr, num(m.p50, 0));
      cell(tr, num(m.p95, 0));
      cell(tr, pct(m.error_rate));
      cell(tr, Object.entries(m.failures).sort().map(([k, v]) => k + " " + v).join(", "));
      cell(tr, m.breaker, "breaker " + m.breaker);
      cell(tr, usd(m.usd_per_min));
      return tr;
    }));
    const spend = document.getElementById("spend");
    if (data.spend.length) {
      spend.replaceChildren(...data.spend.map((s) => {
        const tr = document.createElement("tr");
        cell(tr, s.tenant);
        cell(tr, s.window);
        cell(tr, usd(s.spent_usd));
        cell(tr, usd(s.limit_usd));
        cell(tr, s.limit_usd ? pct(s.spent_usd / s.limit_usd) : "-");
        cell(tr, usd(s.usd_per_min));
        cell(tr, s.runs_out_in_s === null ? (s.limit_usd === null ? "no budget" : "not this " + s.window)
          : s.runs_out_in_s === 0 ? "spent" : "in " + (s.runs_out_in_s / 60).toFixed(1) + " min");
        return tr;
      }));
    }
    const lag = document.getElementById("lag");
    const topics = Object.keys(data.lag).sort();
    if (topics.length) {
      lag.replaceChildren(...topics.map((t) => {
        const tr = document.createElement("tr");
        cell(tr, t);
        cell(tr, String(data.lag[t]));
        return tr;
      }));
    }
  }

  const events = new EventSource("/events");
  events.onmessage = (message) => {
    const data = JSON.parse(message.data);
    const count = document.getElementById("review-count");
    if (count) count.textContent = String(data.review_total);
    if (page === "review") syncQueue("article[data-key]", data.review);
    if (page === "approvals") {
      syncQueue("tr[data-key]", data.approvals.map((a) => a.key));
      const left = new Map(data.approvals.map((a) => [a.key, a.time_left_s]));
      document.querySelectorAll("tr[data-key]").forEach((tr) => {
        const cellLeft = tr.querySelector(".time-left");
        if (cellLeft && left.has(tr.dataset.key)) cellLeft.textContent = left.get(tr.dataset.key) + " s";
      });
    }
    if (page === "fleet") fleet(data.fleet);
    document.body.dataset.live = "1";  // tests wait for this: the first update arrived
  };
  window.addEventListener("beforeunload", () => events.close());
})();
