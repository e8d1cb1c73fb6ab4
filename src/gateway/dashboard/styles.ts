// The dashboard's stylesheet, served at GET /admin/app.css: light and dark themes that follow the
// system, a grid of pool cards that folds to one column on a phone.

export const DASHBOARD_CSS = `
:root {
	--bg: #f5f6f8;
	--card: #ffffff;
	--text: #1b1f24;
	--muted: #57606a;
	--line: #d0d7de;
	--track: #e6e9ee;
	--accent: #0a60c2;
	--ok: #1a7f37;
	--warn: #9a6700;
	--bad: #c2261d;
	--focus: #0a60c2;
	--s-admitted: #1a7f37;
	--s-retry: #8250df;
	--s-provider_429: #c2261d;
	--s-deadline: #bc4c00;
	--s-queue_full: #c2261d;
	--s-shed: #8250df;
	--s-too_large: #57606a;
	--s-circuit_open: #0a60c2;
	--s-probe_in_flight: #1b7c83;
	--s-other: #6e7781;
	color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
	:root {
		--bg: #0d1117;
		--card: #161b22;
		--text: #e6edf3;
		--muted: #9da7b3;
		--line: #30363d;
		--track: #262c36;
		--accent: #4c9dff;
		--ok: #3fb950;
		--warn: #d29922;
		--bad: #ff6b61;
		--focus: #79b8ff;
		--s-admitted: #3fb950;
		--s-retry: #bc8cff;
		--s-provider_429: #ff6b61;
		--s-deadline: #f0883e;
		--s-queue_full: #ff6b61;
		--s-shed: #bc8cff;
		--s-too_large: #9da7b3;
		--s-circuit_open: #4c9dff;
		--s-probe_in_flight: #39c5cf;
		--s-other: #8b949e;
	}
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
	margin: 0;
	background: var(--bg);
	color: var(--text);
	font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
h1, h2, h3 { margin: 0; line-height: 1.2; }
h1 { font-size: 1.25rem; }
h2 { font-size: 1.15rem; }
h3 { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); margin-bottom: 0.4rem; }
.subtitle { font-weight: 400; color: var(--muted); }
.top {
	display: flex;
	flex-wrap: wrap;
	align-items: center;
	gap: 0.5rem 1rem;
	padding: 0.75rem 1.25rem;
	border-bottom: 1px solid var(--line);
	background: var(--card);
}
.status { margin: 0; flex: 1 1 12rem; color: var(--muted); font-size: 0.9rem; }
.status.problem { color: var(--bad); font-weight: 600; }
main { padding: 1rem 1.25rem 2rem; max-width: 90rem; margin: 0 auto; }
button {
	font: inherit;
	padding: 0.45rem 0.9rem;
	border-radius: 6px;
	border: 1px solid var(--accent);
	background: var(--accent);
	color: #fff;
	cursor: pointer;
}
button.secondary { background: transparent; color: var(--text); border-color: var(--line); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
[hidden] { display: none !important; }
.login {
	max-width: 26rem;
	margin: 3rem auto;
	padding: 1.5rem;
	background: var(--card);
	border: 1px solid var(--line);
	border-radius: 10px;
}
.login form { display: grid; gap: 0.5rem; margin-top: 1rem; }
.login label { font-weight: 600; }
.login input {
	font: inherit;
	padding: 0.5rem 0.6rem;
	border-radius: 6px;
	border: 1px solid var(--muted);
	background: var(--bg);
	color: var(--text);
}
.hint { margin: 0; color: var(--muted); font-size: 0.85rem; }
.error { margin: 0; color: var(--bad); font-weight: 600; min-height: 1.2em; }
.pools {
	display: grid;
	gap: 1rem;
	grid-template-columns: repeat(auto-fit, minmax(min(100%, 34rem), 1fr));
	align-items: start;
}
.pool {
	background: var(--card);
	border: 1px solid var(--line);
	border-radius: 10px;
	padding: 1rem 1.1rem 1.1rem;
	display: grid;
	grid-template-columns: minmax(0, 1fr);
	gap: 1rem;
	min-width: 0;
}
.pool-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.4rem 0.6rem; }
.provider { color: var(--muted); font-size: 0.9rem; }
.badges { display: flex; flex-wrap: wrap; gap: 0.4rem; margin-left: auto; }
.badge {
	font-size: 0.8rem;
	font-weight: 600;
	padding: 0.1rem 0.55rem;
	border-radius: 999px;
	border: 1px solid currentColor;
	white-space: nowrap;
}
.badge.ok { color: var(--ok); }
.badge.warn { color: var(--warn); }
.badge.bad { color: var(--bad); }
.gauges { display: grid; gap: 0.75rem; grid-template-columns: repeat(auto-fit, minmax(6.5rem, 1fr)); }
.gauge { min-width: 0; }
.gauge-name { font-weight: 600; font-size: 0.9rem; }
.gauge-value { display: block; font-variant-numeric: tabular-nums; font-weight: 600; }
.bar { height: 0.6rem; background: var(--track); border-radius: 999px; overflow: hidden; margin: 0.3rem 0 0.2rem; }
.fill { height: 100%; width: 0; background: var(--ok); border-radius: 999px; transition: width 0.4s ease; }
.fill.warn { background: var(--warn); }
.fill.bad { background: var(--bad); }
.note { font-size: 0.8rem; color: var(--muted); }
.source { font-weight: 600; color: var(--text); }
.row { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); }
.queue-total { font-size: 0.9rem; margin: 0 0 0.3rem; }
.queue-total strong { font-size: 1.3rem; font-variant-numeric: tabular-nums; }
.classes { display: grid; grid-template-columns: 4.5rem 1fr 3rem; gap: 0.15rem 0.5rem; align-items: center; font-size: 0.85rem; margin: 0; }
.classes dt { color: var(--muted); }
.classes dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.classes .bar { margin: 0; height: 0.45rem; }
.facts { display: grid; grid-template-columns: auto 1fr; gap: 0.2rem 0.75rem; margin: 0; font-size: 0.9rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.charts { display: grid; gap: 0.75rem 1rem; grid-template-columns: repeat(2, minmax(0, 1fr)); }
.chart { margin: 0; min-width: 0; }
.chart figcaption { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0 0.5rem; font-size: 0.85rem; font-weight: 600; }
.chart figcaption span { font-weight: 400; color: var(--muted); font-variant-numeric: tabular-nums; }
.chart svg { display: block; width: 100%; height: 4rem; margin-top: 0.2rem; border-bottom: 1px solid var(--line); }
.axis { display: flex; justify-content: space-between; font-size: 0.7rem; color: var(--muted); }
.chart .grid { stroke: var(--line); stroke-dasharray: 2 3; }
.chart polyline { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
.legend { list-style: none; margin: 0.3rem 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.2rem 0.75rem; font-size: 0.8rem; color: var(--muted); }
.legend li { display: flex; align-items: center; gap: 0.3rem; }
.legend .swatch { width: 0.7rem; height: 0.25rem; border-radius: 2px; display: inline-block; }
.legend .count { color: var(--text); font-variant-numeric: tabular-nums; }
${seriesColours()}
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
th, td { text-align: right; padding: 0.3rem 0.4rem; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; font-size: 0.8rem; }
.empty { color: var(--muted); font-size: 0.9rem; margin: 0; }
@media (max-width: 40rem) {
	main { padding: 0.75rem 0.6rem 1.5rem; }
	.top { padding: 0.6rem 0.75rem; }
	.pool { padding: 0.8rem; }
	.badges { margin-left: 0; }
	td { white-space: normal; }
}
@media (prefers-reduced-motion: reduce) {
	.fill { transition: none; }
}
`;

/** Each chart series and its legend swatch take the colour named by its kind. */
function seriesColours(): string {
	const kinds = [
		"admitted",
		"retry",
		"provider_429",
		"deadline",
		"queue_full",
		"shed",
		"too_large",
		"circuit_open",
		"probe_in_flight",
		"other",
	];
	return kinds
		.map((kind) => `.s-${kind} { stroke: var(--s-${kind}); background: var(--s-${kind}); }`)
		.join("\n");
}
