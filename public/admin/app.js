// The dashboard's script, served as a static asset at /admin/app.js: asks for the admin token
// once, then polls GET /admin/pools and GET /admin/pools/:name/series and draws gauges, queues,
// charts and tenants. Plain browser JavaScript, no build step. A pool card is a list of panels: a
// later panel is one more function.

(() => {
	const TOKEN_KEY = "tollbooth.adminToken";
	const REFRESH_MS = 1500;
	const BATCH_ROWS = 10;
	const CHART_SECONDS = 120;
	const SVG = "http://www.w3.org/2000/svg";
	const PRIORITIES = ["critical", "high", "normal", "low"];
	const REFUSAL_LABELS = {
		deadline: "deadline",
		queue_full: "queue full",
		shed: "shed",
		too_large: "too large",
		circuit_open: "circuit open",
		probe_in_flight: "breaker probing",
	};
	const COLOURED = ["admitted", "retry", "provider_429"].concat(Object.keys(REFUSAL_LABELS));

	const $ = (id) => document.getElementById(id);
	let token = sessionStorage.getItem(TOKEN_KEY);
	let timer = 0;
	/** Only the latest refresh is drawn: one overtaken, or answered after signing out, is dropped. */
	let latest = 0;
	let serverOffsetMs = 0;
	const views = new Map();

	class Refused extends Error {}

	/** An element with attributes (never a style attribute: the CSP forbids them) and children. */
	function el(tag, attributes, ...children) {
		const svg = tag.startsWith("svg:");
		const node = svg ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
		for (const [name, value] of Object.entries(attributes || {})) {
			if (name === "text") node.textContent = value;
			else node.setAttribute(name, value);
		}
		for (const child of children) if (child !== null && child !== undefined) node.append(child);
		return node;
	}

	const number = (value) => Math.round(value).toLocaleString("en");
	/** 100,000 as 100k and 1,500,000 as 1.5M: token counts fit a phone's gauge. */
	function compact(value) {
		if (Math.abs(value) >= 1e6) return `${Math.round(value / 1e5) / 10}M`;
		if (Math.abs(value) >= 1e4) return `${Math.round(value / 1e3)}k`;
		return number(value);
	}
	const perSecond = (value) => (value >= 10 ? number(value) : String(Math.round(value * 10) / 10));
	function duration(ms) {
		if (ms < 1000) return `${Math.round(ms)} ms`;
		if (ms < 60000) return `${(Math.round(ms / 100) / 10).toFixed(1)} s`;
		return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
	}
	const idOf = (text) => text.replace(/[^A-Za-z0-9_-]/g, "_");

	async function messageOf(response) {
		try {
			const body = await response.json();
			return body.error?.message || response.statusText;
		} catch {
			return response.statusText;
		}
	}

	async function api(path, withToken) {
		const response = await fetch(path, {
			headers: { authorization: `Bearer ${withToken || token}` },
			cache: "no-store",
			credentials: "omit",
		});
		if (response.status === 401) throw new Refused(await messageOf(response));
		if (!response.ok) {
			throw new Error(`${path} answered ${response.status}: ${await messageOf(response)}`);
		}
		return response.json();
	}

	function setStatus(text, problem) {
		const status = $("status");
		status.textContent = text;
		status.classList.toggle("problem", Boolean(problem));
	}

	function showLogin(error) {
		clearTimeout(timer);
		latest++;
		token = null;
		sessionStorage.removeItem(TOKEN_KEY);
		$("pools").hidden = true;
		$("pools").replaceChildren();
		views.clear();
		$("batches").hidden = true;
		$("batches-rows").replaceChildren();
		$("sign-out").hidden = true;
		$("login").hidden = false;
		$("login-error").textContent = error || "";
		setStatus(error ? "The admin token was refused." : "Enter the admin token.", Boolean(error));
		const input = $("token");
		input.value = "";
		input.focus();
	}

	async function signIn(event) {
		event.preventDefault();
		const candidate = $("token").value.trim();
		if (!candidate) return;
		$("login-error").textContent = "";
		setStatus("Checking the token…");
		try {
			const pools = await api("/admin/pools", candidate);
			token = candidate;
			sessionStorage.setItem(TOKEN_KEY, token);
			startDashboard(pools);
		} catch (error) {
			if (error instanceof Refused) showLogin(`Refused: ${error.message}`);
			else {
				$("login-error").textContent = `Could not reach the admin API: ${error.message}`;
				setStatus("Could not reach the admin API.", true);
			}
		}
	}

	function startDashboard(first) {
		$("login").hidden = true;
		$("pools").hidden = false;
		$("batches").hidden = false;
		$("sign-out").hidden = false;
		refresh(first);
	}

	async function refresh(first) {
		clearTimeout(timer);
		const id = ++latest;
		try {
			const data = first || (await api("/admin/pools"));
			const [series, batches] = await Promise.all([
				Promise.all(
					data.pools.map((pool) => api(`/admin/pools/${encodeURIComponent(pool.name)}/series`)),
				),
				api(`/admin/batches?limit=${BATCH_ROWS}`),
			]);
			if (id !== latest) return;
			serverOffsetMs = typeof data.nowMs === "number" ? data.nowMs - Date.now() : 0;
			render(data.pools, series);
			renderBatches(batches.batches);
			setStatus(
				"Live · " +
					data.pools.length +
					" pools · updated " +
					new Date().toLocaleTimeString("en-GB"),
			);
		} catch (error) {
			if (id !== latest) return;
			if (error instanceof Refused) return showLogin(`Refused: ${error.message}`);
			setStatus(`Could not refresh: ${error.message} (retrying)`, true);
		}
		// A hidden tab stops asking; it refreshes as soon as it is shown again.
		if (token && !document.hidden) timer = setTimeout(() => refresh(), REFRESH_MS);
	}

	function render(pools, series) {
		const seen = new Set();
		pools.forEach((pool, index) => {
			seen.add(pool.name);
			let view = views.get(pool.name);
			if (!view) {
				view = poolView(pool);
				views.set(pool.name, view);
				$("pools").append(view.root);
			}
			view.update(pool, series[index]);
		});
		for (const [name, view] of views) {
			if (!seen.has(name)) {
				view.root.remove();
				views.delete(name);
			}
		}
	}

	// ---- Pool card: a header and a list of panels, each built once and updated on every refresh.

	function poolView(pool) {
		const id = `pool-${idOf(pool.name)}`;
		const breaker = el("span", { class: "badge" });
		const pause = el("span", { class: "badge bad", hidden: "" });
		const panels = [gaugesPanel(id), queuePanel(id), chartsPanel(id), tenantsPanel(id)];
		const root = el(
			"article",
			{ class: "pool", id: id, "aria-labelledby": `${id}-title` },
			el(
				"header",
				{ class: "pool-head" },
				el("h2", { id: `${id}-title`, text: pool.name }),
				el("span", { class: "provider", text: pool.provider }),
				el("span", { class: "badges" }, pause, breaker),
			),
			...panels.map((panel) => panel.root),
		);
		let pausedUntilMs = 0;
		function showPause() {
			const leftMs = pausedUntilMs - (Date.now() + serverOffsetMs);
			pause.hidden = leftMs <= 0;
			if (leftMs > 0) pause.textContent = `Provider 429: paused ${duration(leftMs)}`;
		}
		return {
			root,
			tick: showPause,
			update(pool, series) {
				const status = pool.status;
				const state = status.provider.state;
				breaker.textContent =
					"breaker " +
					state +
					(state === "closed" ? "" : `, ${duration(status.provider.retryAfterMs)}`);
				breaker.className = `badge ${state === "closed" ? "ok" : state === "open" ? "bad" : "warn"}`;
				pausedUntilMs = status.pausedUntilMs;
				showPause();
				for (const panel of panels) panel.update(status, series);
			},
		};
	}

	/** A labelled bar with role meter; fraction is how full it is, level colours it. */
	function gauge(id, name) {
		const label = el("span", { class: "gauge-name", id: id, text: name });
		const value = el("span", { class: "gauge-value" });
		const fill = el("div", { class: "fill" });
		const bar = el(
			"div",
			{ class: "bar", role: "meter", "aria-labelledby": id, "aria-valuemin": "0" },
			fill,
		);
		const note = el("div", { class: "note" });
		const root = el("div", { class: "gauge" }, label, bar, value, note);
		return {
			root,
			set(current, maximum, text, level, noteNodes) {
				const fraction = maximum > 0 ? Math.min(1, Math.max(0, current / maximum)) : 0;
				fill.style.width = `${(fraction * 100).toFixed(1)}%`;
				fill.className = `fill${level ? ` ${level}` : ""}`;
				bar.setAttribute("aria-valuemax", String(Math.round(maximum)));
				bar.setAttribute("aria-valuenow", String(Math.round(current)));
				bar.setAttribute("aria-valuetext", text);
				value.textContent = text;
				note.replaceChildren(...noteNodes);
			},
		};
	}

	function gaugesPanel(id) {
		const requests = gauge(`${id}-requests`, "Requests bucket");
		const tokens = gauge(`${id}-tokens`, "Tokens bucket");
		const inFlight = gauge(`${id}-inflight`, "In flight");
		const root = el("div", { class: "gauges" }, requests.root, tokens.root, inFlight.root);
		const bucketLevel = (bucket) =>
			bucket.remaining < bucket.capacity * 0.1
				? "bad"
				: bucket.remaining < bucket.capacity * 0.3
					? "warn"
					: "";
		// The full text of the source is in the Provider panel; here its kind.
		const sourceKind = (source) =>
			source === "configured" ? "configured" : source.startsWith("auto") ? "auto" : "learned";
		const limitNote = (perMinute, unit, source) => [
			`limit ${compact(perMinute)} ${unit}/min · `,
			el("span", { class: "source", text: sourceKind(source) }),
		];
		return {
			root,
			update(status) {
				const limits = status.limitsInForce;
				const r = status.requests;
				requests.set(
					r.remaining,
					r.capacity,
					`${number(r.remaining)} / ${number(r.capacity)} left`,
					bucketLevel(r),
					limitNote(limits.requestsPerMinute, "req", limits.source),
				);
				const t = status.tokens;
				tokens.set(
					t.remaining,
					t.capacity,
					`${compact(t.remaining)} / ${compact(t.capacity)} left`,
					bucketLevel(t),
					limitNote(limits.tokensPerMinute, "tok", limits.source),
				);
				const busy = status.inFlight / Math.max(1, status.maxConcurrent);
				inFlight.set(
					status.inFlight,
					status.maxConcurrent,
					`${number(status.inFlight)} / ${number(status.maxConcurrent)}`,
					busy >= 0.9 ? "bad" : busy >= 0.7 ? "warn" : "",
					["of maxConcurrent"],
				);
			},
		};
	}

	function queuePanel(id) {
		const total = el("strong", { id: `${id}-queued`, text: "0" });
		const oldest = el("span");
		const rows = PRIORITIES.map((priority) => {
			const fill = el("div", { class: "fill" });
			const count = el("dd", { text: "0" });
			const bar = el("dd", {}, el("div", { class: "bar" }, fill));
			return { priority, fill, count, nodes: [el("dt", { text: priority }), bar, count] };
		});
		const budget = el("dd");
		const limitsSource = el("dd");
		const breakerCounts = el("dd");
		const root = el(
			"div",
			{ class: "row" },
			el(
				"section",
				{ "aria-labelledby": `${id}-queue-title` },
				el("h3", { id: `${id}-queue-title`, text: "Queue" }),
				el("p", { class: "queue-total" }, total, " waiting · oldest ", oldest),
				el(
					"dl",
					{ class: "classes", "aria-label": "Waiting by priority class" },
					...rows.flatMap((row) => row.nodes),
				),
			),
			el(
				"section",
				{ "aria-labelledby": `${id}-health-title` },
				el("h3", { id: `${id}-health-title`, text: "Provider" }),
				el(
					"dl",
					{ class: "facts" },
					el("dt", { text: "Retry budget" }),
					budget,
					el("dt", { text: "Breaker window" }),
					breakerCounts,
					el("dt", { text: "Limits from" }),
					limitsSource,
				),
			),
		);
		return {
			root,
			update(status) {
				total.textContent = number(status.queued);
				oldest.textContent = status.queued > 0 ? duration(status.oldestWaitMs) : "—";
				const largest = Math.max(1, ...PRIORITIES.map((p) => status.queuedByPriority[p] || 0));
				for (const row of rows) {
					const count = status.queuedByPriority[row.priority] || 0;
					row.count.textContent = number(count);
					row.fill.style.width = `${((count / largest) * 100).toFixed(1)}%`;
					row.fill.className = `fill${count > 0 ? " warn" : ""}`;
				}
				limitsSource.textContent = status.limitsInForce.source;
				const retry = status.provider.retryBudget;
				budget.textContent = `${number(retry.retries)} of ${number(retry.allowance)} retries used (last minute)`;
				breakerCounts.textContent =
					number(status.provider.failures) +
					" failures in " +
					number(status.provider.outcomes) +
					" answers";
			},
		};
	}

	// ---- Charts: inline SVG polylines of events per second over the last CHART_SECONDS.

	function chart(id, title, describe) {
		const width = CHART_SECONDS;
		const height = 40;
		const summary = el("span");
		const lines = el("svg:g");
		const svg = el(
			"svg:svg",
			{
				viewBox: `0 0 ${width} ${height}`,
				preserveAspectRatio: "none",
				role: "img",
				"aria-labelledby": id,
			},
			el("svg:line", {
				class: "grid",
				x1: "0",
				x2: String(width),
				y1: "2",
				y2: "2",
				"vector-effect": "non-scaling-stroke",
			}),
			lines,
		);
		const legend = el("ul", { class: "legend" });
		const caption = el("figcaption", { id: id }, title, summary);
		const axis = el(
			"div",
			{ class: "axis", "aria-hidden": "true" },
			el("span", { text: `−${CHART_SECONDS / 60} min` }),
			el("span", { text: "now" }),
		);
		const root = el("figure", { class: "chart" }, caption, svg, axis, legend);
		return {
			root,
			/** entries: [{ key, label, values }]; values are counts per bucket, oldest first. */
			draw(entries, bucketMs) {
				const perBucket = bucketMs / 1000;
				let peak = 0;
				for (const entry of entries)
					for (const value of entry.values) peak = Math.max(peak, value / perBucket);
				const top = Math.max(1, peak);
				lines.replaceChildren(
					...entries.map((entry) => {
						const points = entry.values
							.map(
								(value, x) =>
									`${x},${(height - 2 - ((value / perBucket) * (height - 4)) / top).toFixed(2)}`,
							)
							.join(" ");
						return el("svg:polyline", {
							class: `s-${entry.colour}`,
							points: points,
							"vector-effect": "non-scaling-stroke",
						});
					}),
				);
				summary.textContent = `peak ${perSecond(peak)}/s`;
				if (entries.length === 0) legend.replaceChildren(el("li", { text: "none" }));
				else
					legend.replaceChildren(
						...entries.map((entry) => {
							const total = entry.values.reduce((sum, value) => sum + value, 0);
							return el(
								"li",
								{ "data-kind": entry.key },
								el("span", { class: `swatch s-${entry.colour}`, "aria-hidden": "true" }),
								`${entry.label} `,
								el("span", { class: "count", text: number(total) }),
							);
						}),
					);
				svg.setAttribute("aria-description", describe(entries, peak));
			},
		};
	}

	function chartsPanel(id) {
		const admissions = chart(
			`${id}-chart-admitted`,
			"Admissions",
			(_, peak) => `peak ${perSecond(peak)} per second`,
		);
		const refusals = chart(
			`${id}-chart-refused`,
			"Refusals by reason",
			(entries) => entries.map((entry) => entry.label).join(", ") || "none",
		);
		const throttled = chart(
			`${id}-chart-429`,
			"Provider 429s",
			(_, peak) => `peak ${perSecond(peak)} per second`,
		);
		const retries = chart(
			`${id}-chart-retry`,
			"Retries",
			(_, peak) => `peak ${perSecond(peak)} per second`,
		);
		const root = el(
			"section",
			{ "aria-labelledby": `${id}-charts-title` },
			el("h3", {
				id: `${id}-charts-title`,
				text: `Per second, last ${CHART_SECONDS / 60} minutes`,
			}),
			el("div", { class: "charts" }, admissions.root, refusals.root, throttled.root, retries.root),
		);
		const recent = (values) => {
			const padded = new Array(Math.max(0, CHART_SECONDS - values.length)).fill(0).concat(values);
			return padded.slice(-CHART_SECONDS);
		};
		const one = (snapshot, key, label) => ({
			key,
			label,
			colour: key,
			values: recent(snapshot.series[key] || []),
		});
		return {
			root,
			update(_status, snapshot) {
				admissions.draw([one(snapshot, "admitted", "admitted")], snapshot.bucketMs);
				const reasons = Object.keys(snapshot.series)
					.filter((key) => key.startsWith("refused:"))
					.map((key) => {
						const reason = key.slice("refused:".length);
						return {
							key: reason,
							label: REFUSAL_LABELS[reason] || reason.replace(/_/g, " "),
							colour: COLOURED.includes(reason) ? reason : "other",
							values: recent(snapshot.series[key]),
						};
					})
					.filter((entry) => entry.values.some((value) => value > 0));
				refusals.draw(reasons, snapshot.bucketMs);
				throttled.draw([one(snapshot, "provider_429", "provider 429")], snapshot.bucketMs);
				retries.draw([one(snapshot, "retry", "retries")], snapshot.bucketMs);
			},
		};
	}

	// ---- Tenants: their share of the pool (by weight and by what they hold), queue and own limits.

	function tenantsPanel(id) {
		const body = el("tbody");
		const empty = el("p", { class: "empty", text: "No tenant has used this pool yet." });
		const table = el(
			"table",
			{ "aria-labelledby": `${id}-tenants-title` },
			el(
				"thead",
				{},
				el(
					"tr",
					{},
					...["Tenant", "Fair share", "In flight", "Queued", "Own requests", "Own tokens"].map(
						(name) => el("th", { scope: "col", text: name }),
					),
				),
			),
			body,
		);
		const root = el(
			"section",
			{ "aria-labelledby": `${id}-tenants-title` },
			el("h3", { id: `${id}-tenants-title`, text: "Tenants" }),
			el("div", { class: "table-wrap" }, table),
			empty,
		);
		const own = (bucket) =>
			bucket ? `${number(bucket.remaining)} / ${number(bucket.capacity)} left` : "—";
		const percent = (part, whole) => (whole > 0 ? `${Math.round((part / whole) * 100)}%` : "—");
		return {
			root,
			update(status) {
				const tenants = Object.entries(status.tenants).sort((a, b) => a[0].localeCompare(b[0]));
				const weights = tenants.reduce((sum, [, tenant]) => sum + tenant.weight, 0);
				table.hidden = tenants.length === 0;
				empty.hidden = tenants.length > 0;
				body.replaceChildren(
					...tenants.map(([name, tenant]) =>
						el(
							"tr",
							{},
							el("th", { scope: "row", text: name }),
							el("td", { text: `${percent(tenant.weight, weights)} (w ${tenant.weight})` }),
							el("td", {
								text:
									number(tenant.inFlight) +
									(tenant.maxConcurrent ? ` / ${number(tenant.maxConcurrent)}` : "") +
									" (" +
									percent(tenant.inFlight, status.inFlight) +
									")",
							}),
							el("td", {
								text: `${number(tenant.queued)} (${percent(tenant.queued, status.queued)})`,
							}),
							el("td", { text: own(tenant.requests) }),
							el("td", { text: own(tenant.tokens) }),
						),
					),
				);
			},
		};
	}

	// ---- Batches: the newest of every tenant, their status and how far their lines have got.

	function renderBatches(batches) {
		$("batches-table").hidden = batches.length === 0;
		$("batches-empty").hidden = batches.length > 0;
		$("batches-rows").replaceChildren(
			...batches.map((batch) => {
				const { total, pending, failed, expired } = batch.counts;
				return el(
					"tr",
					{ "data-batch": batch.id },
					el("th", { scope: "row", class: "mono", text: batch.id, title: batch.endpoint }),
					el("td", { text: batch.tenant }),
					el("td", { text: batch.pool }),
					el(
						"td",
						{},
						el("span", { class: `badge ${statusClass(batch.status)}`, text: batch.status }),
					),
					el("td", { text: `${number(total - pending)} / ${number(total)}` }),
					el("td", { text: number(failed + expired) }),
					el("td", { text: new Date(batch.createdAt).toLocaleString("en-GB") }),
				);
			}),
		);
	}

	function statusClass(status) {
		if (status === "completed") return "ok";
		if (status === "failed" || status === "expired") return "bad";
		if (status === "cancelled" || status === "cancelling") return "warn";
		return "";
	}

	// The pause countdown moves between refreshes.
	setInterval(() => {
		for (const view of views.values()) view.tick();
	}, 200);
	$("login-form").addEventListener("submit", signIn);
	$("sign-out").addEventListener("click", () => showLogin());
	document.addEventListener("visibilitychange", () => {
		if (!document.hidden && token && !$("pools").hidden) refresh();
	});
	if (token) startDashboard();
	else showLogin();
})();
