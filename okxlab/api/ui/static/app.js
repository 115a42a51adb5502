// okxlab dashboard: live events, charts and the theme. Parts of a page re-read themselves through htmx when an
// event they listen for arrives (hx-trigger="live-fill from:body"); charts re-read their data here.
(function () {
  "use strict";
  var KINDS = ["run", "fill", "order", "state", "control", "replay"];

  // ---- live events: server-sent, one stream per page -------------------------------------------------------
  function announce(kind, detail) {
    document.body.dispatchEvent(new CustomEvent("live-" + kind, { detail: detail || {} }));
  }

  var source = null;

  function listen() {
    if (!document.body.dataset.stream || source) return;  // signed out: nothing to listen to
    source = new EventSource(document.body.dataset.stream);
    source.onopen = function () { document.body.dataset.live = "on"; };
    source.onerror = function () { document.body.dataset.live = "off"; };
    KINDS.forEach(function (kind) {
      source.addEventListener(kind, function (e) {
        var detail = {};
        try { detail = JSON.parse(e.data); } catch (err) { /* a malformed event is only a hint */ }
        document.body.dataset.lastEvent = kind;
        announce(kind, detail);
      });
    });
    // Reconnected after a gap: what was missed is unknown, so everything re-reads.
    source.addEventListener("resync", resync);
  }

  function resync() { KINDS.forEach(function (k) { announce(k, { resync: true }); }); }

  // A page left for another stays in the browser's back/forward cache with its stream open; a browser allows
  // six connections per host over HTTP/1.1, so a few pages later nothing would load. Close on leaving, and on
  // coming back re-open and re-read everything (events went by meanwhile).
  window.addEventListener("pagehide", function () {
    if (source) { source.close(); source = null; document.body.dataset.live = "off"; }
  });
  window.addEventListener("pageshow", function (e) { if (e.persisted) { listen(); resync(); } });

  // ---- theme -----------------------------------------------------------------------------------------------
  function theme() {
    var set = document.documentElement.dataset.theme;
    if (set) return set;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function toggleTheme() {
    var next = theme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("okxlab-theme", next); } catch (err) { /* private mode */ }
    charts.forEach(function (c) { c.restyle(); });
  }

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  var PALETTE = ["#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f08c00", "#c2255c", "#5c7cfa",
                 "#66a80f", "#862e9c", "#0b7285", "#d9480f"];

  // ---- charts ----------------------------------------------------------------------------------------------
  var charts = [];

  function Chart(el) {
    this.el = el;
    this.kind = el.dataset.chart;
    this.src = el.dataset.src;
    this.series = [];
    this.chart = LightweightCharts.createChart(el, this.options());
    new ResizeObserver(this.resize.bind(this)).observe(el);
    var self = this, timer = null, kinds = (el.dataset.live || "").split(" ").filter(Boolean);
    var agent = el.dataset.agent, book = el.dataset.book;
    kinds.forEach(function (kind) {
      document.body.addEventListener("live-" + kind, function (e) {
        var d = e.detail || {};
        if (!d.resync && ((agent && d.agent && d.agent !== agent) || (book && d.book && d.book !== book))) return;
        clearTimeout(timer);
        timer = setTimeout(function () { self.load(); }, 250);
      });
    });
    var initial = el.dataset.initial && document.getElementById(el.dataset.initial);
    if (initial) this.draw(JSON.parse(initial.textContent));  // sent with the page
    else this.load();
  }

  Chart.prototype.options = function () {
    return {
      autoSize: false, width: this.el.clientWidth, height: this.el.clientHeight,
      layout: { background: { color: "transparent" }, textColor: css("--muted"), attributionLogo: true },
      grid: { vertLines: { color: css("--line") }, horzLines: { color: css("--line") } },
      rightPriceScale: { borderColor: css("--line") },
      timeScale: { borderColor: css("--line"), timeVisible: true, secondsVisible: false },
      crosshair: { mode: 0 },
    };
  };

  Chart.prototype.restyle = function () { this.chart.applyOptions(this.options()); };

  Chart.prototype.resize = function () { this.chart.resize(this.el.clientWidth, this.el.clientHeight); };

  Chart.prototype.clear = function () {
    var chart = this.chart;
    this.series.forEach(function (s) { chart.removeSeries(s); });
    this.series = [];
  };

  Chart.prototype.line = function (name, points, color, opts) {
    var s = this.chart.addLineSeries(Object.assign({ color: color, lineWidth: 2, title: name,
      pointMarkersVisible: points.length < 3,  // a line of one point would not show at all
      priceFormat: { type: "price", precision: 2, minMove: 0.01 } }, opts || {}));
    s.setData(points.map(function (p) { return { time: p[0], value: p[1] }; }));
    this.series.push(s);
    return s;
  };

  Chart.prototype.legend = function (items) {
    var box = this.el.parentElement.querySelector(".legend");
    if (!box) return;
    box.textContent = "";
    items.forEach(function (item) {
      var span = document.createElement("span"), mark = document.createElement("i");
      mark.style.background = item[1];
      span.appendChild(mark);
      span.appendChild(document.createTextNode(item[0]));
      box.appendChild(span);
    });
  };

  // Charts of one page that draw the same data (equity and drawdown) share one request.
  var inflight = {};

  function getJSON(url) {
    if (!inflight[url]) {
      inflight[url] = fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      }).finally(function () { delete inflight[url]; });
    }
    return inflight[url];
  }

  Chart.prototype.load = function () {
    var self = this;
    getJSON(this.src).then(function (data) { self.draw(data); })
      .catch(function (err) { self.el.dataset.error = String(err); });
  };

  Chart.prototype.draw = function (data) {
    this.clear();
    this["draw_" + this.kind](data);
    this.el.dataset.loaded = String(Date.now());
    this.chart.timeScale().fitContent();
  };

  Chart.prototype.draw_arena = function (data) {
    var self = this, legend = [];
    data.agents.forEach(function (a, i) {
      var color = PALETTE[i % PALETTE.length];
      self.line(a.name, a.points, color);
      legend.push([a.name, color]);
    });
    if (data.buy_and_hold.points.length) {
      self.line("buy-and-hold", data.buy_and_hold.points, css("--muted"), { lineStyle: 2 });
      legend.push(["buy-and-hold " + data.buy_and_hold.symbol, css("--muted")]);
    }
    if (data.cash.length) {
      self.line("cash", data.cash, css("--line"), { lineStyle: 1, lineWidth: 1 });
      legend.push(["cash", css("--line")]);
    }
    this.legend(legend);
  };

  Chart.prototype.draw_equity = function (data) { this.line("equity", data.equity, css("--accent")); };

  Chart.prototype.draw_drawdown = function (data) {
    var s = this.chart.addAreaSeries({ lineColor: css("--down"), topColor: "rgba(200,50,60,0.05)",
      bottomColor: "rgba(200,50,60,0.35)", lineWidth: 1, title: "drawdown %",
      priceFormat: { type: "price", precision: 2, minMove: 0.01 } });
    s.setData(data.drawdown.map(function (p) { return { time: p[0], value: p[1] }; }));
    this.series.push(s);
  };

  Chart.prototype.draw_market = function (data) {
    this.el.dataset.points = String(data.candles.length);
    var empty = this.el.parentElement.querySelector("[data-empty]");
    if (empty) empty.hidden = data.candles.length > 0;
    var candles = this.chart.addCandlestickSeries({ upColor: css("--up"), downColor: css("--down"),
      wickUpColor: css("--up"), wickDownColor: css("--down"), borderVisible: false });
    candles.setData(data.candles);
    this.series.push(candles);
    var times = data.candles.map(function (c) { return c.time; });
    // A marker sits on the bar its fill happened in (the last bar opened at or before it).
    var markers = data.markers.map(function (m) {
      var at = times[0];
      for (var i = 0; i < times.length && times[i] <= m.time; i++) at = times[i];
      var buy = m.side === "buy";
      return { time: at, position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
               color: m.entry ? css("--accent") : css("--warn"), text: m.text };
    }).filter(function (m) { return m.time !== undefined; });
    markers.sort(function (a, b) { return a.time - b.time; });
    candles.setMarkers(markers);
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(function (el) { charts.push(new Chart(el)); });
    var toggle = document.getElementById("theme-toggle");
    if (toggle) toggle.addEventListener("click", toggleTheme);
    document.querySelectorAll("select[data-go]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
    listen();
  });
})();
