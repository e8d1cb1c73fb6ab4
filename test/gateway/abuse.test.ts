// Through the Worker, as an adversarial caller: path variants, smuggled headers, a provider that
// quotes the pool's key, oversized and lying bodies, bad cost fields, two auth headers.
import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readBody } from "../../src/gateway/request-body.ts";
import { CHAT, settledPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS, TEST_PROVIDER_KEY } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
afterEach(() => upstream.restore());

function send(
	path: string,
	init: { method?: string; headers?: Record<string, string>; body?: BodyInit | object } = {},
) {
	const headers = new Headers({ authorization: `Bearer ${TEST_KEYS.teamA}` });
	for (const [name, value] of Object.entries(init.headers ?? {})) headers.set(name, value);
	let body = init.body;
	if (body !== undefined && !(body instanceof ReadableStream) && typeof body === "object") {
		headers.set("content-type", "application/json");
		body = JSON.stringify(body);
	}
	return exports.default.fetch(
		new Request(`http://tollbooth.test${path}`, {
			method: init.method ?? (body === undefined ? "GET" : "POST"),
			headers,
			body: body as BodyInit | undefined,
		}),
	);
}

type OpenAIError = { error: { message: string; type: string } };
type AnthropicError = { type: "error"; error: { type: string; message: string } };

describe("one canonical route: no path variant reaches a metered endpoint unmetered", () => {
	beforeEach(() => {
		upstream = installMockUpstream();
	});

	const VARIANTS = [
		"/openai/v1/chat//completions",
		"/openai/v1//chat/completions",
		"/openai/v1/chat/completions/",
		"/openai/v1/chat/completions//",
		"/openai/v1/%63hat/completions",
		"/openai/v1/chat/completions%2F",
		"/openai/v1/chat%2Fcompletions",
		"/openai/v1/chat%2fcompletions",
		"/openai/v1/chat%5Ccompletions",
		"/openai/v1/chat/completions%252F",
		"/openai/v1/chat/completions%00",
		"/openai/v1/chat/%2e%2e/chat/completions",
		"/openai/v1/x/..%2Fchat/completions",
		"/anthropic/v1//messages",
		"/anthropic/v1/messages/",
		"/anthropic/v1/messages%2F",
	];

	it.each(VARIANTS)("%s is refused or metered like the canonical route", async (path) => {
		// A body without a model: the metered route refuses it, a pass-through would forward it.
		const response = await send(path, { body: { messages: [{ role: "user", content: "Hi" }] } });
		expect(response.status).toBe(400);
		const text = await response.text();
		expect(text).toMatch(/Missing or invalid|not a valid API path/);
		expect(upstream.sent).toHaveLength(0);
	});

	it("a variant that is served is sent to exactly the canonical path and metered (usage injected)", async () => {
		for (const path of ["/openai/v1/chat//completions", "/openai/v1/chat/completions/"]) {
			const response = await send(path, { body: { ...CHAT, stream: true } });
			expect(response.status).toBe(200);
			await response.text();
		}
		expect(upstream.sent.map((sent) => new URL(sent.url).pathname)).toEqual([
			"/openai/v1/chat/completions",
			"/openai/v1/chat/completions",
		]);
		for (const sent of upstream.sent) {
			expect(JSON.parse(sent.body).stream_options).toEqual({ include_usage: true });
		}
	});

	it("refused paths answer in the provider's shape", async () => {
		const openai = await send("/openai/v1/chat/completions%2F", { body: CHAT });
		expect(((await openai.json()) as OpenAIError).error.message).toMatch(/encoded \//);
		const anthropic = await send("/anthropic/v1/messages%2F", { body: CHAT });
		const body = (await anthropic.json()) as AnthropicError;
		expect(body.type).toBe("error");
		expect(body.error.type).toBe("invalid_request_error");
	});

	it("methods are checked per route: GET or PUT on chat/completions is 405 in the provider's shape", async () => {
		for (const method of ["GET", "PUT", "PATCH"]) {
			const response = await send("/openai/v1/chat/completions", {
				method,
				body: method === "GET" ? undefined : CHAT,
			});
			expect(response.status).toBe(405);
			expect(response.headers.get("allow")).toBe("POST");
			expect(((await response.json()) as OpenAIError).error.type).toBe("invalid_request_error");
		}
		const anthropic = await send("/anthropic/v1/messages");
		expect(anthropic.status).toBe(405);
		expect(((await anthropic.json()) as AnthropicError).type).toBe("error");
		const put = await send("/openai/v1/models", { method: "PUT", body: {} });
		expect(put.status).toBe(405);
		expect(upstream.sent).toHaveLength(0);
	});

	it("unknown routes: passed through at 1 request by default, 404 where the pool denies them", async () => {
		expect((await send("/openai/v1/models")).status).toBe(200);
		expect(upstream.sent).toHaveLength(1);
		const denied = await send("/strict/v1/models");
		expect(denied.status).toBe(404);
		expect(((await denied.json()) as OpenAIError).error.message).toMatch(
			/serves only \/chat\/completions.*\/models is not passed through/,
		);
		expect((await send("/strict/v1/chat/completions", { body: CHAT })).status).toBe(200);
		expect(upstream.sent).toHaveLength(2);
	});
});

describe("request headers to the provider by allow-list", () => {
	beforeEach(() => {
		upstream = installMockUpstream();
	});

	const SMUGGLED = {
		"openai-organization": "org-tenant-choice",
		"openai-project": "proj-tenant-choice",
		"openai-beta": "assistants=v2, realtime=v1",
		via: "1.1 evil",
		"true-client-ip": "203.0.113.9",
		"x-client-ip": "203.0.113.9",
		"x-forwarded-for": "203.0.113.9",
		forwarded: "for=203.0.113.9",
		cookie: "session=1",
		"x-custom": "anything",
		"user-agent": "OpenAI/JS 7.57.0",
		"x-stainless-lang": "js",
		"x-stainless-package-version": "7.57.0",
		accept: "application/json",
	};
	const NEVER_SENT = [
		"via",
		"true-client-ip",
		"x-client-ip",
		"x-forwarded-for",
		"forwarded",
		"cookie",
		"x-custom",
	];

	it("a tenant's organization, project and beta headers never reach the provider", async () => {
		expect((await send("/openai/v1/chat/completions", { body: CHAT, headers: SMUGGLED })).ok).toBe(
			true,
		);
		const headers = upstream.sent[0]?.headers ?? new Headers();
		for (const name of [...NEVER_SENT, "openai-organization", "openai-project", "openai-beta"]) {
			expect(headers.get(name), name).toBeNull();
		}
		expect(headers.get("user-agent")).toBe("OpenAI/JS 7.57.0");
		expect(headers.get("x-stainless-lang")).toBe("js");
		expect(headers.get("x-stainless-package-version")).toBe("7.57.0");
		expect(headers.get("authorization")).toBe(`Bearer ${TEST_PROVIDER_KEY}`);
	});

	it("the pool's own organization and project are sent, and only the betas it permits", async () => {
		expect((await send("/strict/v1/chat/completions", { body: CHAT, headers: SMUGGLED })).ok).toBe(
			true,
		);
		const headers = upstream.sent[0]?.headers ?? new Headers();
		expect(headers.get("openai-organization")).toBe("org-operator");
		expect(headers.get("openai-project")).toBe("proj-operator");
		expect(headers.get("openai-beta")).toBe("assistants=v2");
		for (const name of NEVER_SENT) expect(headers.get(name), name).toBeNull();
	});

	it("anthropic: anthropic-version crosses, anthropic-beta only as far as the pool permits", async () => {
		const message = { model: "claude-sonnet-4-5", max_tokens: 16, messages: CHAT.messages };
		const betas = "prompt-caching-2024-07-31,computer-use-2024-10-22";
		for (const pool of ["anthropic", "anthropic-betas"]) {
			const response = await send(`/${pool}/v1/messages`, {
				body: message,
				headers: { "anthropic-version": "2023-06-01", "anthropic-beta": betas, via: "x" },
			});
			expect(response.status).toBe(200);
		}
		const [plain, permitted] = upstream.sent.map((sent) => sent.headers);
		expect(plain?.get("anthropic-version")).toBe("2023-06-01");
		expect(plain?.get("anthropic-beta")).toBeNull();
		expect(permitted?.get("anthropic-beta")).toBe("prompt-caching-2024-07-31");
		expect(permitted?.get("via")).toBeNull();
	});
});

describe("provider answers relayed without the pool's key", () => {
	const KEY_SHAPED = "sk-proj-AbCdEf0123456789GhIjKlMnOpQrStUv";

	function quotingProvider(status: number, provider: "openai" | "anthropic") {
		const message = `Key ${TEST_PROVIDER_KEY} (also ${KEY_SHAPED}) rejected for this request`;
		const body =
			provider === "openai"
				? { error: { message, type: "invalid_request_error", param: null, code: null } }
				: { type: "error", error: { type: "invalid_request_error", message } };
		return new Response(JSON.stringify(body), {
			status,
			headers: {
				"content-type": "application/json",
				"x-request-id": `req_${TEST_PROVIDER_KEY}`,
				"x-echo-key": TEST_PROVIDER_KEY,
				"set-cookie": `k=${TEST_PROVIDER_KEY}`,
				"openai-organization": "org-operator-secret",
				"anthropic-organization-id": "operator-org",
				"x-should-retry": "false",
			},
		});
	}

	const STATUSES = [400, 404, 409, 413, 422, 500, 503];

	it.each(STATUSES)(
		"%i: no byte of the key in the body or headers the caller gets",
		async (status) => {
			for (const [pool, path, provider] of [
				["faults-4xx", "/chat/completions", "openai"],
				["faults-anthropic", "/messages", "anthropic"],
			] as const) {
				upstream = installMockUpstream({}, () => quotingProvider(status, provider));
				const body =
					provider === "openai"
						? CHAT
						: { model: "claude-sonnet-4-5", max_tokens: 16, messages: CHAT.messages };
				const response = await send(`/${pool}/v1${path}`, { body });
				expect(response.status).toBe(status);
				const text = await response.text();
				const headerText = [...response.headers].map(([name, value]) => `${name}: ${value}`);
				for (const visible of [text, ...headerText]) {
					expect(visible).not.toContain(TEST_PROVIDER_KEY);
					expect(visible).not.toContain(KEY_SHAPED.slice(0, 12));
					expect(visible).not.toMatch(/operator-secret|operator-org|set-cookie/);
				}
				// Still the provider's own error, with its message legible around the redactions.
				expect(text).toMatch(/\[redacted\].*rejected for this request/);
				expect(response.headers.get("x-request-id")).toBe("req_[redacted]");
				upstream.restore();
			}
		},
	);

	it("an error event mid-stream carries neither the key nor anything key-shaped, even split across chunks", async () => {
		upstream = installMockUpstream({}, () => {
			const events = [
				`data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "Hel" } }] })}\n\n`,
				`data: ${JSON.stringify({ error: { message: `upstream auth ${TEST_PROVIDER_KEY} / ${KEY_SHAPED}`, type: "server_error" } })}\n\n`,
			].join("");
			const bytes = new TextEncoder().encode(events);
			const cut = events.indexOf(TEST_PROVIDER_KEY) + 5;
			const stream = new ReadableStream<Uint8Array>({
				start(controller) {
					controller.enqueue(bytes.slice(0, cut));
					controller.enqueue(bytes.slice(cut));
					controller.close();
				},
			});
			return new Response(stream, { headers: { "content-type": "text/event-stream" } });
		});
		const response = await send("/faults/v1/chat/completions", { body: { ...CHAT, stream: true } });
		const text = await response.text();
		expect(text).toContain('"Hel"');
		expect(text).toContain("upstream auth [redacted]");
		expect(text).not.toContain(TEST_PROVIDER_KEY);
		expect(text).not.toContain(KEY_SHAPED.slice(0, 12));
	});
});

describe("request bodies: 413 every time, in the provider's shape, promptly", () => {
	beforeEach(() => {
		upstream = installMockUpstream();
	});

	/** A chunked body of `bytes` (no content-length), in 64 KiB chunks. */
	function chunkedBody(bytes: number): ReadableStream<Uint8Array> {
		let sent = 0;
		return new ReadableStream({
			pull(controller) {
				if (sent >= bytes) return controller.close();
				const size = Math.min(65_536, bytes - sent);
				controller.enqueue(new Uint8Array(size).fill(0x61));
				sent += size;
			},
		});
	}

	it("ten concurrent oversized chunked bodies: ten 413s, no stack trace", async () => {
		const responses = await Promise.all(
			Array.from({ length: 10 }, () =>
				send("/openai/v1/chat/completions", {
					headers: { "content-type": "application/json" },
					body: chunkedBody(2 * 1024 * 1024),
				}),
			),
		);
		for (const response of responses) {
			expect(response.status).toBe(413);
			const body = (await response.json()) as OpenAIError;
			expect(body.error.message).toMatch(/larger than this gateway accepts \(65536 bytes\)/);
			expect(JSON.stringify(body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
		}
		expect(upstream.sent).toHaveLength(0);
	});

	it("a declared content-length over the maximum is refused before the body is read", async () => {
		let pulled = 0;
		const body = new ReadableStream<Uint8Array>({
			pull(controller) {
				pulled++;
				controller.enqueue(new Uint8Array(1024));
			},
		});
		const request = new Request("http://tollbooth.test/", {
			method: "POST",
			headers: { "content-length": String(10 * 1024 * 1024) },
			body,
		});
		await expect(readBody(request, 65_536)).rejects.toMatchObject({ status: 413 });
		expect(pulled).toBeLessThanOrEqual(1);
	});

	it("a body that stops arriving is given up on at the idle bound (408), not waited for", async () => {
		const stalled = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(new TextEncoder().encode('{"model":'));
			},
		});
		const request = new Request("http://tollbooth.test/", { method: "POST", body: stalled });
		const startedMs = Date.now();
		await expect(readBody(request, 65_536, 200)).rejects.toMatchObject({
			status: 408,
			reason: "body_timeout",
		});
		expect(Date.now() - startedMs).toBeLessThan(1_000);
	});

	it("a small body with its length declared: read whole, 408 when it stops, 400 when it breaks off", async () => {
		const declared = (body: ReadableStream<Uint8Array>) =>
			new Request("http://tollbooth.test/", {
				method: "POST",
				headers: { "content-length": "100" },
				body,
			});
		const piece = new TextEncoder().encode('{"model":');
		const stalled = new ReadableStream<Uint8Array>({
			start: (controller) => controller.enqueue(piece),
		});
		const startedMs = Date.now();
		await expect(readBody(declared(stalled), 65_536, 200)).rejects.toMatchObject({
			status: 408,
			reason: "body_timeout",
		});
		expect(Date.now() - startedMs).toBeLessThan(1_000);

		const broken = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(piece);
				controller.error(new Error("connection reset"));
			},
		});
		await expect(readBody(declared(broken), 65_536, 200)).rejects.toMatchObject({
			status: 400,
			reason: "body_incomplete",
		});

		const whole = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(piece);
				controller.enqueue(new TextEncoder().encode('"gpt-4o-mini"}'));
				controller.close();
			},
		});
		const body = await readBody(declared(whole), 65_536, 200);
		expect(new TextDecoder().decode(body)).toBe('{"model":"gpt-4o-mini"}');
	});
});

describe("cost-deciding fields and auth", () => {
	beforeEach(() => {
		upstream = installMockUpstream();
	});

	it.each([
		["/openai/v1/chat/completions", { ...CHAT, max_tokens: -1 }],
		["/openai/v1/chat/completions", { ...CHAT, max_tokens: "16" }],
		["/openai/v1/chat/completions", { ...CHAT, max_completion_tokens: 2.5 }],
		["/openai/v1/responses", { model: "gpt-4o-mini", input: "Hi", max_output_tokens: -10 }],
		[
			"/anthropic/v1/messages",
			{ model: "claude-sonnet-4-5", max_tokens: "1024", messages: CHAT.messages },
		],
	])("%s with %o: 400 in the provider's shape, nothing reserved or sent", async (path, body) => {
		const pool = path.split("/")[1] ?? "";
		const response = await send(path, { body });
		expect(response.status).toBe(400);
		expect(await response.text()).toMatch(/must be a non-negative integer/);
		expect(upstream.sent).toHaveLength(0);
		expect((await settledPool(pool)).inFlight).toBe(0);
	});

	it("both auth headers: one rule, the same key in each or 401", async () => {
		const both = (authorization: string, apiKey: string) =>
			send("/openai/v1/chat/completions", {
				body: CHAT,
				headers: { authorization, "x-api-key": apiKey },
			});
		expect((await both(`Bearer ${TEST_KEYS.teamA}`, TEST_KEYS.teamA)).status).toBe(200);
		for (const [authorization, apiKey] of [
			[`Bearer ${TEST_KEYS.teamA}`, "bad-key"],
			["Bearer bad-key", TEST_KEYS.teamA],
			[`Bearer ${TEST_KEYS.teamA}`, TEST_KEYS.teamB],
			[`Basic ${TEST_KEYS.teamA}`, TEST_KEYS.teamA],
		] as const) {
			const response = await both(authorization, apiKey);
			expect(response.status, `${authorization} / ${apiKey}`).toBe(401);
			expect(((await response.json()) as OpenAIError).error.message).toMatch(
				/different keys|must be 'Bearer/,
			);
		}
		expect(upstream.sent).toHaveLength(1);
	});
});
