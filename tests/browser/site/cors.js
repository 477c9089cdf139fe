// A browser client of the Botyard API on another origin. Query parameters: api (the API's
// origin), streams (the streams process's origin; default: api), login, password, bot (a bot
// spec as JSON), start and end (the backtest's range), symbol. Everything it learns goes into
// window.report for the test to read.
"use strict";

const params = new URLSearchParams(location.search);
const API = params.get("api");
const STREAMS = params.get("streams") || API;
const FINISHED = ["succeeded", "failed", "cancelled"];
const report = {done: false, error: null, stream: {open: false, errors: 0, events: []}};
window.report = report;

function show() {
  document.getElementById("report").textContent = JSON.stringify(report, null, 2);
}

async function call(method, path, {body, token, headers = {}} = {}) {
  const sent = {...headers};
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (token) sent["Authorization"] = "Bearer " + token;
  const response = await fetch(new URL(path, API), {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {status: response.status, headers: response.headers, data: text ? JSON.parse(text) : null};
}

function follow(symbol) {
  const source = new EventSource(new URL("/api/v1/market/stream?symbols=" + symbol, STREAMS));
  source.onopen = () => { report.stream.open = true; show(); };
  source.addEventListener("quote", (event) => {
    report.stream.events.push({type: event.type, id: event.lastEventId, data: JSON.parse(event.data)});
    show();
  });
  source.onerror = () => {
    report.stream.errors += 1;
    report.stream.readyState = source.readyState;  // 2: CLOSED, the browser gave up
    show();
  };
}

async function backtest(botId, token) {
  const body = {bot_id: botId, start: params.get("start"), end: params.get("end")};
  const queued = await call("POST", "/api/v1/backtests", {body, token});
  const location = queued.headers.get("Location");  // readable only if exposed
  report.backtest = {status: queued.status, location, polls: 0};
  let current = queued.data;
  while (!FINISHED.includes(current.status) && report.backtest.polls < 600) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    current = (await call("GET", location, {token})).data;
    report.backtest.polls += 1;
  }
  Object.assign(report.backtest, {
    id: current.id,
    final: current.status,
    bars: current.bars,
    trades: current.metrics && current.metrics.trades,
    final_equity: current.metrics && current.metrics.final_equity,
  });
}

async function candles(symbol) {
  const path = `/api/v1/market/instruments/${symbol}/candles?timeframe=1h` +
    `&start=${params.get("start")}&end=${params.get("end")}`;
  const first = await call("GET", path);
  const etag = first.headers.get("ETag");
  const again = await fetch(new URL(path, API), {headers: {"If-None-Match": etag}});
  report.candles = {status: first.status, rows: first.data.rows.length, etag, conditional: again.status};
}

async function run() {
  const symbol = params.get("symbol");
  follow(symbol);
  const login = await call("POST", "/api/v1/auth/login", {
    body: {login: params.get("login"), password: params.get("password")},
  });
  report.login = {
    status: login.status,
    requestId: login.headers.get("X-Request-ID"),
    rateLimitRemaining: login.headers.get("X-RateLimit-Remaining"),
  };
  const token = login.data.access_token;
  const created = await call("POST", "/api/v1/bots", {body: JSON.parse(params.get("bot")), token});
  report.created = {status: created.status, id: created.data.id, name: created.data.name};
  const bots = await call("GET", "/api/v1/bots", {token});
  report.bots = {status: bots.status, total: bots.data.total, names: bots.data.items.map((b) => b.name)};
  show();
  await backtest(created.data.id, token);
  await candles(symbol);
}

run()
  .catch((error) => { report.error = {name: error.name, message: error.message}; })
  .finally(() => { report.done = true; show(); });
