// The attacks of issue 9 replayed against `wrangler dev` on loopback, with a loopback echo server as
// the provider: each check counts its runs and the ones that got through.
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { startWranglerDev } from "../../bench/lib/wrangler-dev.ts";
import { type EchoProvider, type Received, startEchoProvider } from "./echo-provider.ts";

const GATEWAY_KEY = "probe-gateway-key";
const OTHER_KEY = "probe-other-key";
/** Realistic in shape, so key-shaped scrubbing is exercised too; base64url holds no ' or $. */
const PROVIDER_KEY = `sk-proj-${randomBytes(36).toString("base64url")}`;
const MAX_BODY_BYTES = 1024 * 1024;
const QUOTED_STATUSES = [400, 401, 403, 404, 409, 413, 422, 429, 500, 503];
const METERED = new Set([
	"/v1/chat/completions",
	"/v1/completions",
	"/v1/responses",
	"/v1/embeddings",
	"/v1/messages",
	"/v1/messages/count_tokens",
]);
const CHAT = { model: "echo", messages: [{ role: "user", content: "Hi" }], max_tokens: 8 };
const MESSAGE = { model: "echo", max_tokens: 8, messages: [{ role: "user", content: "Hi" }] };
/** A stack frame as V8 prints it ("    at fn (file.ts:12:5)"). */
const STACK_FRAME = /\n\s+at .*:\d+:\d+/;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function pool(name: string, provider: "openai" | "anthropic", origin: string, extra = {}) {
	return {
		name,
		provider,
		baseUrl: `${origin}/v1`,
		apiKeySecret: "PROBE_PROVIDER_KEY",
		limits: { requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000, maxConcurrent: 64 },
		...extra,
	};
}

function probeConfig(echoOrigin: string) {
	return {
		maxBodyBytes: MAX_BODY_BYTES,
		pools: [
			pool("openai", "openai", echoOrigin),
			pool("anthropic", "anthropic", echoOrigin),
			pool("strict", "openai", echoOrigin, {
				organization: "org-operator",
				project: "proj-operator",
				allowedBetas: ["assistants=v2"],
				passThrough: "deny",
			}),
			pool("betas", "anthropic", echoOrigin, { allowedBetas: ["prompt-caching-2024-07-31"] }),
			// One pool per quoted status and API, tried once: no retry or breaker hides the answer.
			...QUOTED_STATUSES.flatMap((status) => [
				pool(`q${status}`, "openai", echoOrigin, { maxAttempts: 1 }),
				pool(`qa${status}`, "anthropic", echoOrigin, { maxAttempts: 1 }),
			]),
		],
		tenants: [
			{ name: "probe", keySha256: [sha256(GATEWAY_KEY)], pools: ["*"] },
			{ name: "other", keySha256: [sha256(OTHER_KEY)], pools: ["*"] },
		],
	};
}

interface Answer {
	status: number;
	/** Status line, headers and body: every byte the client sees. */
	visible: string;
	body: string;
	headers: Record<string, string | string[] | undefined>;
	/** Until the status line and headers arrived. */
	headersMs: number;
	/** Until the whole answer arrived. */
	ms: number;
	error?: string;
}

type Body =
	| { kind: "none" }
	| { kind: "json"; value: unknown }
	| { kind: "chunked"; bytes: number }
	/** A content-length, and how many bytes of it are really sent (the rest never comes). */
	| { kind: "declared"; declared: number; sent: number };

/** One raw HTTP/1.1 request (the path is sent exactly as given), with a time limit. */
function send(
	origin: string,
	method: string,
	path: string,
	headers: Record<string, string>,
	body: Body = { kind: "none" },
	timeoutMs = 30_000,
): Promise<Answer> {
	const startedMs = performance.now();
	const url = new URL(origin);
	const allHeaders: Record<string, string> = { authorization: `Bearer ${GATEWAY_KEY}`, ...headers };
	let payload: Buffer | undefined;
	if (body.kind === "json") {
		payload = Buffer.from(JSON.stringify(body.value));
		allHeaders["content-type"] ??= "application/json";
		allHeaders["content-length"] = String(payload.length);
	} else if (body.kind === "declared") {
		allHeaders["content-length"] = String(body.declared);
	} else if (body.kind === "chunked") {
		allHeaders["content-type"] ??= "application/json";
	}
	return new Promise((done) => {
		let settled = false;
		let headersMs = Number.NaN;
		const finish = (answer: Omit<Answer, "ms" | "headersMs">) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			outgoing.destroy();
			done({ ...answer, headersMs, ms: performance.now() - startedMs });
		};
		const failed = (error: string) =>
			finish({ status: 0, visible: "", body: "", headers: {}, error });
		const outgoing = httpRequest(
			{ host: url.hostname, port: url.port, method, path, headers: allHeaders, agent: false },
			(response) => {
				headersMs = performance.now() - startedMs;
				const chunks: Buffer[] = [];
				response.on("data", (chunk: Buffer) => chunks.push(chunk));
				response.on("error", () => failed("the answer broke off"));
				response.on("end", () => {
					const text = Buffer.concat(chunks).toString("utf8");
					const lines = [`HTTP/1.1 ${response.statusCode} ${response.statusMessage}`];
					for (let i = 0; i < response.rawHeaders.length; i += 2) {
						lines.push(`${response.rawHeaders[i]}: ${response.rawHeaders[i + 1]}`);
					}
					finish({
						status: response.statusCode ?? 0,
						visible: `${lines.join("\r\n")}\r\n\r\n${text}`,
						body: text,
						headers: response.headers,
					});
				});
			},
		);
		const timer = setTimeout(() => failed(`no answer within ${timeoutMs} ms`), timeoutMs);
		outgoing.on("error", (error) => failed(`${(error as NodeJS.ErrnoException).code ?? error}`));
		if (body.kind === "json") outgoing.end(payload);
		else if (body.kind === "none") outgoing.end();
		else {
			// Written as fast as the connection takes it, without reading the answer first.
			const total = body.kind === "chunked" ? body.bytes : body.sent;
			const chunk = Buffer.alloc(64 * 1024, 0x61);
			let written = 0;
			const pump = () => {
				while (!settled && written < total) {
					const piece = chunk.subarray(0, Math.min(chunk.length, total - written));
					written += piece.length;
					if (!outgoing.write(piece)) return void outgoing.once("drain", pump);
				}
				if (!settled && (body.kind === "chunked" || body.sent === body.declared)) outgoing.end();
			};
			pump();
		}
	});
}

/** A provider's own reading of a path: decoded, separators unified, empty segments collapsed. */
function providerReading(path: string): string {
	let decoded = path.split("?")[0] ?? "";
	try {
		decoded = decodeURIComponent(decoded);
	} catch {
		// Kept as sent.
	}
	return decoded.replace(/\\/g, "/").replace(/\/+/g, "/").replace(/\/$/, "");
}

/** Every 12-character piece of the key: a client-visible byte run containing one is a leak. */
function leaksKey(text: string): boolean {
	for (let start = 0; start + 12 <= PROVIDER_KEY.length; start += 4) {
		if (text.includes(PROVIDER_KEY.slice(start, start + 12))) return true;
	}
	return false;
}

export class Report {
	readonly checks = new Map<string, { runs: number; failures: string[] }>();
	/** Measurements worth printing beside the checks (timings). */
	readonly figures: string[] = [];

	figure(line: string): void {
		this.figures.push(line);
	}

	check(name: string, ok: boolean, detail: string): void {
		const entry = this.checks.get(name) ?? { runs: 0, failures: [] };
		entry.runs++;
		if (!ok) entry.failures.push(detail);
		this.checks.set(name, entry);
	}

	/** Every answer: no stack trace, and never the provider's key. */
	answer(answer: Answer, what: string): void {
		if (answer.error) return;
		this.check("no answer carries a stack trace", !STACK_FRAME.test(answer.body), what);
		this.check("no answer carries the provider key", !leaksKey(answer.visible), what);
	}

	get failed(): number {
		return [...this.checks.values()].reduce((sum, entry) => sum + entry.failures.length, 0);
	}

	/** One line per check (passed/runs), with up to five failures under it. */
	lines(): string[] {
		const checks = [...this.checks].flatMap(([name, { runs, failures }]) => [
			`${failures.length === 0 ? "ok  " : "FAIL"} ${name}: ${runs - failures.length}/${runs}`,
			...failures.slice(0, 5).map((failure) => `       ${failure}`),
		]);
		return [...checks, ...this.figures.map((figure) => `     ${figure}`)];
	}
}

/** What reached the provider while `act` ran. */
async function receivedDuring(echo: EchoProvider, act: () => Promise<void>): Promise<Received[]> {
	const before = echo.received.length;
	await act();
	// The Worker may still be sending after the client has its answer (it never is today).
	await new Promise((wait) => setTimeout(wait, 50));
	return echo.received.slice(before);
}

const PATH_VARIANTS = [
	"/openai/v1/chat//completions",
	"/openai/v1//chat/completions",
	"/openai/v1/chat/completions/",
	"/openai/v1/chat/completions//",
	"/openai/v1/chat/completions%2F",
	"/openai/v1/chat%2Fcompletions",
	"/openai/v1/chat%2fcompletions",
	"/openai/v1/chat%5Ccompletions",
	"/openai/v1/chat%5ccompletions",
	"/openai/v1/chat/completions%252F",
	"/openai/v1/%63hat/completions",
	"/openai/v1/chat/completions%00",
	"/openai/v1/chat/completions%20",
	"/openai/v1/chat/./completions",
	"/openai/v1/chat/%2e/completions",
	"/openai/v1/x/../chat/completions",
	"/openai/v1/x/%2e%2e/chat/completions",
	"/openai/v1/x/..%2Fchat/completions",
	"/openai/v1/chat/completions?x=/../",
	"/openai/v1/chat/completions;x",
	"/openai/v1/embeddings//",
	"/openai/v1//responses",
	"/anthropic/v1//messages",
	"/anthropic/v1/messages/",
	"/anthropic/v1/messages%2F",
	"/anthropic/v1/messages//count_tokens",
	"/anthropic/v1/%6dessages",
];

async function pathVariants(origin: string, echo: EchoProvider, report: Report) {
	for (const path of PATH_VARIANTS) {
		const anthropic = path.startsWith("/anthropic");
		// No model: the metered route refuses it, so anything that reaches a metered path went unmetered.
		const modelless = await receivedDuring(echo, async () => {
			const answer = await send(
				origin,
				"POST",
				path,
				{},
				{ kind: "json", value: { messages: [] } },
			);
			report.answer(answer, `POST ${path}`);
		});
		for (const reached of modelless) {
			report.check(
				"no path variant reaches a metered endpoint unmetered",
				!METERED.has(providerReading(reached.path)),
				`${path} reached ${reached.path} unmetered`,
			);
		}
		if (modelless.length === 0) {
			report.check("no path variant reaches a metered endpoint unmetered", true, path);
		}
		// A good streamed request: if it reaches chat/completions, it was metered (usage injected).
		const body = anthropic ? { ...MESSAGE, stream: true } : { ...CHAT, stream: true };
		const streamed = await receivedDuring(echo, async () => {
			report.answer(await send(origin, "POST", path, {}, { kind: "json", value: body }), path);
		});
		for (const reached of streamed) {
			const reading = providerReading(reached.path);
			report.check(
				"a served path variant is sent to exactly its canonical path",
				reached.path.split("?")[0] === reading,
				`${path} was sent as ${reached.path}`,
			);
			if (reading === "/v1/chat/completions") {
				const sent = JSON.parse(reached.body) as { stream_options?: { include_usage?: boolean } };
				report.check(
					"no path variant reaches a metered endpoint unmetered",
					sent.stream_options?.include_usage === true,
					`${path} streamed without metering`,
				);
			}
		}
	}
	for (const [method, path] of [
		["GET", "/openai/v1/chat/completions"],
		["PUT", "/openai/v1/chat/completions"],
		["DELETE", "/openai/v1/chat/completions"],
		["GET", "/anthropic/v1/messages"],
		["PATCH", "/openai/v1/models"],
	] as const) {
		const reached = await receivedDuring(echo, async () => {
			const answer = await send(origin, method, path, {});
			report.answer(answer, `${method} ${path}`);
			report.check(
				"methods checked per route (405)",
				answer.status === 405,
				`${method} ${path}: ${answer.status}`,
			);
		});
		report.check(
			"methods checked per route (405)",
			reached.length === 0,
			`${method} ${path} was sent`,
		);
	}
	const denied = await receivedDuring(echo, async () => {
		const answer = await send(origin, "GET", "/strict/v1/models", {});
		report.check(
			"unknown routes refused where the pool denies them",
			answer.status === 404,
			`${answer.status}`,
		);
	});
	report.check("unknown routes refused where the pool denies them", denied.length === 0, "sent");
}

const SMUGGLED = {
	"openai-organization": "org-tenant-choice",
	"openai-project": "proj-tenant-choice",
	"openai-beta": "assistants=v2,realtime=v1",
	"anthropic-beta": "prompt-caching-2024-07-31,computer-use-2024-10-22",
	via: "1.1 tenant",
	"true-client-ip": "203.0.113.7",
	"x-client-ip": "203.0.113.7",
	"x-forwarded-for": "203.0.113.7",
	"x-real-ip": "203.0.113.7",
	forwarded: "for=203.0.113.7",
	cookie: "tenant=1",
	"x-custom-header": "tenant",
};

async function headers(origin: string, echo: EchoProvider, report: Report) {
	const cases = [
		{ path: "/openai/v1/chat/completions", body: CHAT, allowed: {} },
		{
			path: "/strict/v1/chat/completions",
			body: CHAT,
			allowed: {
				"openai-organization": "org-operator",
				"openai-project": "proj-operator",
				"openai-beta": "assistants=v2",
			},
		},
		{ path: "/anthropic/v1/messages", body: MESSAGE, allowed: {} },
		{
			path: "/betas/v1/messages",
			body: MESSAGE,
			allowed: { "anthropic-beta": "prompt-caching-2024-07-31" },
		},
	];
	for (const { path, body, allowed } of cases) {
		const reached = await receivedDuring(echo, async () => {
			report.answer(
				await send(origin, "POST", path, SMUGGLED, { kind: "json", value: body }),
				path,
			);
		});
		report.check("the request reached the provider", reached.length === 1, path);
		const sent = reached[0]?.headers ?? {};
		for (const name of Object.keys(SMUGGLED)) {
			const expected = (allowed as Record<string, string>)[name];
			report.check(
				"no client-chosen organization/project/beta/identity header reaches the provider",
				sent[name] === expected,
				`${path}: ${name} arrived as ${JSON.stringify(sent[name])}, expected ${JSON.stringify(expected)}`,
			);
		}
	}
}

async function quotedKey(origin: string, echo: EchoProvider, report: Report) {
	for (const status of QUOTED_STATUSES) {
		for (const [pool, path, body] of [
			[`q${status}`, "/chat/completions", CHAT],
			[`qa${status}`, "/messages", MESSAGE],
		] as const) {
			const reached = await receivedDuring(echo, async () => {
				const answer = await send(
					origin,
					"POST",
					`/${pool}/v1${path}`,
					{},
					{
						kind: "json",
						value: { ...body, model: `quote-${status}` },
					},
				);
				report.answer(answer, `${pool} ${status}`);
				report.check(
					"a provider error quoting the key reaches the client without it",
					!leaksKey(answer.visible) && answer.status > 0,
					`${pool}: ${answer.status} ${answer.error ?? ""}`,
				);
			});
			report.check("the request reached the provider", reached.length >= 1, `${pool}`);
		}
	}
	for (const [pool, path, body] of [
		["openai", "/chat/completions", CHAT],
		["anthropic", "/messages", MESSAGE],
	] as const) {
		const answer = await send(
			origin,
			"POST",
			`/${pool}/v1${path}`,
			{},
			{
				kind: "json",
				value: { ...body, model: "stream-error", stream: true },
			},
		);
		report.answer(answer, `${pool} stream error`);
		report.check(
			"a stream error event quoting the key reaches the client without it",
			answer.status === 200 && answer.body.includes("[redacted]") && !leaksKey(answer.visible),
			`${pool}: ${answer.status} ${answer.body.slice(0, 200)}`,
		);
	}
}

async function bodies(origin: string, echo: EchoProvider, report: Report, rounds: number) {
	const path = "/openai/v1/chat/completions";
	const shaped = (answer: Answer) => {
		try {
			const body = JSON.parse(answer.body) as { error?: { message?: unknown } };
			return typeof body.error?.message === "string";
		} catch {
			return false;
		}
	};
	const tenAtOnce = (body: Body, timeoutMs?: number) =>
		Promise.all(Array.from({ length: 10 }, () => send(origin, "POST", path, {}, body, timeoutMs)));
	const slowest = (answers: Answer[], field: "headersMs" | "ms") =>
		Math.round(Math.max(...answers.map((answer) => answer[field])));
	const reached = await receivedDuring(echo, async () => {
		for (let round = 1; round <= rounds; round++) {
			const attacks = [
				{
					name: "20 MB chunked bodies get 413 (x10 at once)",
					answers: await tenAtOnce({ kind: "chunked", bytes: 20_000_000 }),
					status: 413,
					withinMs: 5_000,
				},
				{
					name: "20 MB bodies with their content-length get 413 (x10 at once)",
					answers: await tenAtOnce({ kind: "declared", declared: 20_000_000, sent: 20_000_000 }),
					status: 413,
					withinMs: 5_000,
				},
				{
					name: "a declared content-length over the maximum gets 413 at once (x10, 1 kB sent)",
					answers: await tenAtOnce({ kind: "declared", declared: 20_000_000, sent: 1000 }, 5_000),
					status: 413,
					withinMs: 500,
				},
				{
					name: "a body shorter than its content-length is answered within the idle bound (x10)",
					answers: await tenAtOnce({ kind: "declared", declared: 1000, sent: 10 }, 20_000),
					status: 408,
					withinMs: 15_000,
				},
			];
			for (const { name, answers, status, withinMs } of attacks) {
				for (const answer of answers) {
					report.answer(answer, name);
					report.check(
						`${name}, in the provider's shape, headers within ${withinMs} ms`,
						answer.status === status && shaped(answer) && answer.headersMs < withinMs,
						`${answer.status} after ${Math.round(answer.headersMs)} ms ${answer.error ?? answer.body.slice(0, 100)}`,
					);
				}
				report.figure(
					`round ${round}: ${name}: slowest headers ${slowest(answers, "headersMs")} ms, whole answer ${slowest(answers, "ms")} ms`,
				);
			}
		}
	});
	report.check(
		"no oversized or short body reaches the provider",
		reached.length === 0,
		`${reached.length} sent`,
	);
}

async function costFieldsAndAuth(origin: string, echo: EchoProvider, report: Report) {
	const bad = [
		["/openai/v1/chat/completions", { ...CHAT, max_tokens: -1 }],
		["/openai/v1/chat/completions", { ...CHAT, max_tokens: "8" }],
		["/openai/v1/chat/completions", { ...CHAT, max_completion_tokens: 1.5 }],
		["/openai/v1/responses", { model: "echo", input: "Hi", max_output_tokens: -5 }],
		["/anthropic/v1/messages", { ...MESSAGE, max_tokens: "1024" }],
		["/anthropic/v1/messages", { ...MESSAGE, max_tokens: -1 }],
	] as const;
	for (const [path, body] of bad) {
		const reached = await receivedDuring(echo, async () => {
			const answer = await send(origin, "POST", path, {}, { kind: "json", value: body });
			report.answer(answer, path);
			report.check(
				"bad max_tokens gets 400 before anything is reserved",
				answer.status === 400,
				`${path} ${JSON.stringify(body)}: ${answer.status}`,
			);
		});
		report.check(
			"bad max_tokens gets 400 before anything is reserved",
			reached.length === 0,
			`${path} sent`,
		);
	}
	for (const [authorization, apiKey, expected] of [
		[`Bearer ${GATEWAY_KEY}`, GATEWAY_KEY, 200],
		[`Bearer ${GATEWAY_KEY}`, "wrong", 401],
		["Bearer wrong", GATEWAY_KEY, 401],
		[`Bearer ${GATEWAY_KEY}`, OTHER_KEY, 401],
		[`Basic ${GATEWAY_KEY}`, GATEWAY_KEY, 401],
	] as const) {
		const answer = await send(
			origin,
			"POST",
			"/openai/v1/chat/completions",
			{ authorization, "x-api-key": apiKey },
			{
				kind: "json",
				value: CHAT,
			},
		);
		report.answer(answer, "two auth headers");
		report.check(
			"both auth headers: one rule (same key or 401)",
			answer.status === expected,
			`${authorization} + ${apiKey}: ${answer.status}`,
		);
	}
}

export interface ProbeOptions {
	/** Rounds of the body attacks: "413 every time" is a claim about repeats. */
	bodyRounds?: number;
	log?: (line: string) => void;
}

/** Starts the echo provider and the gateway, runs every attack, stops both. */
export async function runProbe({
	bodyRounds = 3,
	log = () => {},
}: ProbeOptions = {}): Promise<Report> {
	const echo = await startEchoProvider(PROVIDER_KEY);
	log(`echo provider on ${echo.origin}; starting wrangler dev…`);
	const report = new Report();
	try {
		const gateway = await startWranglerDev({
			config: probeConfig(echo.origin),
			vars: { PROBE_PROVIDER_KEY: PROVIDER_KEY },
		});
		try {
			log(`gateway on ${gateway.origin}`);
			await pathVariants(gateway.origin, echo, report);
			await headers(gateway.origin, echo, report);
			await quotedKey(gateway.origin, echo, report);
			await bodies(gateway.origin, echo, report, bodyRounds);
			await costFieldsAndAuth(gateway.origin, echo, report);
		} finally {
			await gateway.stop();
		}
	} finally {
		await echo.close();
	}
	return report;
}
