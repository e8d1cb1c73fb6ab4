// Through the Worker: a non-2xx answer, a missing secret and an unreachable provider each write one
// JSON log line naming pool, tenant, status and cause; no line can carry a key, prompt or completion.
import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { logLine } from "../../src/log.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS, TEST_PROVIDER_KEY } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
let lines: string[];
beforeEach(() => {
	lines = [];
	const keep = (line: unknown) => {
		lines.push(String(line));
	};
	vi.spyOn(console, "log").mockImplementation(keep);
	vi.spyOn(console, "error").mockImplementation(keep);
});
afterEach(() => {
	upstream?.restore();
	vi.restoreAllMocks();
});

const PROMPT = "my secret prompt about the quarterly numbers";

function chat(pool: string, key: string) {
	return exports.default.fetch(
		new Request(`http://tollbooth.test/${pool}/v1/chat/completions`, {
			method: "POST",
			headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
			body: JSON.stringify({
				model: "gpt-4o-mini",
				max_tokens: 16,
				messages: [{ role: "user", content: PROMPT }],
			}),
		}),
	);
}

/** The log lines written, parsed; each must be one JSON object on one line. */
function events(): Record<string, unknown>[] {
	return lines.map((line) => {
		expect(line).not.toContain("\n");
		return JSON.parse(line) as Record<string, unknown>;
	});
}

describe("log lines", () => {
	it("an unknown gateway key: one answer line with pool, status and cause, no key", async () => {
		upstream = installMockUpstream();
		const response = await chat("openai", "tb-not-a-key-0123456789");
		expect(response.status).toBe(401);
		expect(events()).toEqual([
			expect.objectContaining({
				event: "answer",
				pool: "openai",
				status: 401,
				cause: "unknown_key",
			}),
		]);
		expect(lines.join("")).not.toContain("tb-not-a-key");
	});

	it("a pool whose provider key secret is not set names the secret to put", async () => {
		upstream = installMockUpstream();
		const response = await chat("nokey", TEST_KEYS.teamA);
		expect(response.status).toBe(500);
		const [line] = events();
		expect(line).toMatchObject({
			event: "answer",
			pool: "nokey",
			tenant: "team-a",
			status: 500,
			cause: "no_provider_key",
		});
		expect(String(line?.message)).toContain("wrangler secret put UNSET_SECRET");
	});

	it("a provider that refuses the pool's key: the secret to check, never the key", async () => {
		upstream = installMockUpstream({ apiKey: "the-key-the-provider-wants" });
		const response = await chat("faults-4xx", TEST_KEYS.teamA);
		expect(response.status).toBe(502);
		expect(events()).toEqual([
			expect.objectContaining({ event: "answer", status: 502, cause: "provider_auth" }),
		]);
		expect(lines.join("")).not.toContain(TEST_PROVIDER_KEY);
	});

	it("an unreachable provider is named by host and path", async () => {
		upstream = installMockUpstream({}, () => {
			throw new TypeError("Network connection lost.");
		});
		const response = await chat("breaker", TEST_KEYS.teamA);
		expect(response.status).toBe(502);
		const last = events().at(-1);
		expect(last).toMatchObject({
			event: "unreachable",
			pool: "breaker",
			tenant: "team-a",
			status: 502,
			cause: "connection_failed",
			upstream: "mock.test/openai/v1/chat/completions",
		});
	});

	it("no answer line for a 200, and no line ever holds the prompt or the completion", async () => {
		upstream = installMockUpstream();
		const response = await chat("openai", TEST_KEYS.teamA);
		expect(response.status).toBe(200);
		await response.text();
		expect(lines).toEqual([]);
	});
});

describe("the scrub", () => {
	it("writes only the named fields, with anything shaped like a key redacted", () => {
		const line = logLine("answer", {
			pool: "openai",
			status: 502,
			message: "refused sk-proj-abcdef123456 and Bearer tb-dev-key and sk-ant-api03-xyz987654",
			upstream: "api.openai.com/v1/chat/completions",
			// A caller that tries to log a body gets nothing of it.
			...({ body: PROMPT, prompt: PROMPT } as object),
		});
		expect(JSON.parse(line)).toEqual({
			event: "answer",
			pool: "openai",
			status: 502,
			message: "refused [redacted] and [redacted] and [redacted]",
			upstream: "api.openai.com/v1/chat/completions",
		});
	});

	it("keeps tollbooth's own file and batch ids, so an operator can find what a line is about", () => {
		const fileId = `file-${"0123456789abcdef".repeat(2)}`;
		const batchId = `msgbatch_${"fedcba9876543210".repeat(2)}`;
		const opaque = "Zq3xT9vLw2Rk8sYp4Hn6Jb1Mc5Df7Ga0";
		const line = JSON.parse(
			logLine("answer", {
				message: `No such File object: ${fileId}; token ${opaque}; file-${opaque}`,
				batch: batchId,
			}),
		) as { message: string; batch: string };
		expect(line.message).toBe(`No such File object: ${fileId}; token [redacted]; [redacted]`);
		expect(line.batch).toBe(batchId);
	});

	it("cuts a long text to a sentence's length", () => {
		const line = JSON.parse(logLine("answer", { message: "word ".repeat(500) })) as {
			message: string;
		};
		expect(line.message.length).toBeLessThanOrEqual(401);
	});
});
