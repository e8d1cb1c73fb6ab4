// `npm run probe`: replays the attacks of issue 9 against `wrangler dev` on loopback, with a loopback
// echo server as the provider, and exits non-zero if any of them gets through.
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { startWranglerDev } from "../bench/lib/wrangler-dev.ts";
import { type EchoProvider, type Received, startEchoProvider } from "./probe/echo-provider.ts";

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
	ms: number;
	error?: string;
}

type Body =
	| { kind: "none" }
	| { kind: "json"; value: unknown }
	| { kind: "chunked"; bytes: number }
	| { kind: "lying"; declared: number; sent: number };

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
	} else if (body.kind === "lying") {
		allHeaders["content-length"] = String(body.declared);
	} else if (body.kind === "chunked") {
		allHeaders["content-type"] ??= "application/json";
	}
	return new Promise((done) => {
		let settled = false;
		const finish = (answer: Omit<Answer, "ms">) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			outgoing.destroy();
			done({ ...answer, ms: performance.now() - startedMs });
		};
		const failed = (error: string) =>
			finish({ status: 0, visible: "", body: "", headers: {}, error });
		const outgoing = httpRequest(
			{ host: url.hostname, port: url.port, method, path, headers: allHeaders, agent: false },
			(response) => {
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
		else if (body.kind === "lying") outgoing.write(Buffer.alloc(body.sent, 0x20));
		else {
			const chunk = Buffer.alloc(64 * 1024, 0x61);
			let written = 0;
			const pump = () => {
				while (!settled && written < body.bytes) {
					written += chunk.length;
					if (!outgoing.write(chunk)) return void outgoing.once("drain", pump);
				}
				if (!settled) outgoing.end();
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

class Report {
	readonly checks = new Map<string, { runs: number; failures: string[] }>();

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

	print(): void {
		for (const [name, { runs, failures }] of this.checks) {
			console.log(
				`${failures.length === 0 ? "ok  " : "FAIL"} ${name}: ${runs - failures.length}/${runs}`,
			);
			for (const failure of failures.slice(0, 5)) console.log(`       ${failure}`);
		}
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

async function bodies(origin: string, echo: EchoProvider, report: Report) {
	const path = "/openai/v1/chat/completions";
	const shaped = (answer: Answer) => {
		try {
			return (
				typeof (JSON.parse(answer.body) as { error?: { message?: unknown } }).error?.message ===
				"string"
			);
		} catch {
			return false;
		}
	};
	const reached = await receivedDuring(echo, async () => {
		const chunked = await Promise.all(
			Array.from({ length: 10 }, () =>
				send(origin, "POST", path, {}, { kind: "chunked", bytes: 20_000_000 }),
			),
		);
		for (const answer of chunked) {
			report.answer(answer, "20 MB chunked");
			report.check(
				"oversized chunked bodies get 413 in the provider's shape (x10 at once)",
				answer.status === 413 && shaped(answer),
				`${answer.status} ${answer.error ?? answer.body.slice(0, 120)}`,
			);
		}
		const declared = await Promise.all(
			Array.from({ length: 10 }, () =>
				send(origin, "POST", path, {}, { kind: "lying", declared: 20_000_000, sent: 1000 }, 5_000),
			),
		);
		for (const answer of declared) {
			report.answer(answer, "declared 20 MB, sent 1 kB");
			report.check(
				"a declared content-length over the maximum gets 413 at once (x10, < 2 s)",
				answer.status === 413 && shaped(answer) && answer.ms < 2_000,
				`${answer.status} in ${Math.round(answer.ms)} ms ${answer.error ?? ""}`,
			);
		}
		const lying = await Promise.all(
			Array.from({ length: 10 }, () =>
				send(origin, "POST", path, {}, { kind: "lying", declared: 1000, sent: 10 }, 20_000),
			),
		);
		for (const answer of lying) {
			report.answer(answer, "declared 1 kB, sent 10 B");
			report.check(
				"a body shorter than its content-length is answered within the idle bound (x10, < 15 s)",
				answer.status === 408 && shaped(answer) && answer.ms < 15_000,
				`${answer.status} in ${Math.round(answer.ms)} ms ${answer.error ?? ""}`,
			);
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

const echo = await startEchoProvider(PROVIDER_KEY);
console.log(`echo provider on ${echo.origin}; starting wrangler dev…`);
const gateway = await startWranglerDev({
	config: probeConfig(echo.origin),
	vars: { PROBE_PROVIDER_KEY: PROVIDER_KEY },
});
const report = new Report();
try {
	console.log(`gateway on ${gateway.origin}`);
	await pathVariants(gateway.origin, echo, report);
	await headers(gateway.origin, echo, report);
	await quotedKey(gateway.origin, echo, report);
	await bodies(gateway.origin, echo, report);
	await costFieldsAndAuth(gateway.origin, echo, report);
} finally {
	await gateway.stop();
	await echo.close();
}
report.print();
console.log(
	report.failed === 0 ? "probe: every attack was stopped" : `probe: ${report.failed} failures`,
);
process.exitCode = report.failed === 0 ? 0 : 1;
