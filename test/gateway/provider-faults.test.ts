// Through the Worker, against the mock provider in fault modes: failures are retried with backoff
// while that can help and the budget allows, a dead provider trips the breaker, and every caller
// gets an answer with no slot left held.
import { exports } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { poolStatus, postToPool, settledPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const chat = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], max_tokens: 16 };
const message = {
	model: "claude-sonnet-4-5",
	messages: [{ role: "user", content: "Hi" }],
	max_tokens: 16,
};

const send = (pool: string, path?: string, body?: object) => postToPool(pool, { path, body });

const status = poolStatus;

const settled = settledPool;

/** The first `failures` sends get `fault`; the rest go to the healthy mock. */
function failingFirst(failures: number, fault: string) {
	return (request: Request, attempt: number) => {
		if (attempt > failures) return undefined;
		const faulty = new Request(request, {
			headers: { ...Object.fromEntries(request.headers), "x-mock-fault": fault },
		});
		return upstream?.mock.fetch(faulty);
	};
}

it("a 500 is retried with backoff and the caller gets the good answer", async () => {
	upstream = installMockUpstream({}, failingFirst(1, "500"));
	const response = await send("faults");
	expect(response.status).toBe(200);
	expect(response.headers.get("x-tollbooth-retries")).toBe("1");
	expect(upstream.sent).toHaveLength(2);
	const after = await settled("faults");
	expect(after.inFlight).toBe(0);
});

it("an Anthropic 529 (overloaded) and a dropped connection are retried too", async () => {
	upstream = installMockUpstream({}, failingFirst(1, "529"));
	const overloaded = await send("faults-anthropic", "/messages", message);
	expect(overloaded.status).toBe(200);
	expect(overloaded.headers.get("x-tollbooth-retries")).toBe("1");
	upstream.restore();

	upstream = installMockUpstream({}, failingFirst(1, "reset"));
	const reset = await send("faults");
	expect(reset.status).toBe(200);
	expect(reset.headers.get("x-tollbooth-retries")).toBe("1");
	await settled("faults");
});

it("a provider that keeps failing is tried the documented 3 times, then its own error is passed on", async () => {
	upstream = installMockUpstream({}, failingFirst(10, "503"));
	const response = await send("faults");
	expect(response.status).toBe(503);
	expect(response.headers.get("x-tollbooth-retries")).toBe("2");
	expect(upstream.sent).toHaveLength(3);
	expect(((await response.json()) as { error: { type: string } }).error.type).toBeTruthy();
	await settled("faults");
});

it("a 4xx other than 408/409/429 is never retried", async () => {
	upstream = installMockUpstream();
	const response = await send("faults-4xx", "/chat/completions", { ...chat, model: 42 });
	expect(response.status).toBe(400);
	expect(upstream.sent).toHaveLength(0); // refused by tollbooth before any send
	const bad = await exports.default.fetch(
		new Request("http://tollbooth.test/faults-4xx/v1/assistants", {
			method: "POST",
			headers: { authorization: `Bearer ${TEST_KEYS.teamA}`, "content-type": "application/json" },
			body: "{}",
		}),
	);
	expect(bad.status).toBe(404); // the mock's own 404, passed on once
	expect(upstream.sent).toHaveLength(1);
});

it("a dead provider trips the breaker: callers hear 503 at once, and a probe closes it on recovery", async () => {
	upstream = installMockUpstream({ fault: "500" });
	const statuses: number[] = [];
	for (let i = 0; i < 6 && !statuses.includes(503); i++)
		statuses.push((await send("breaker")).status);
	expect(statuses.at(-1)).toBe(503);
	const sentBefore = upstream.sent.length;
	const refused = await send("breaker");
	expect(refused.status).toBe(503);
	expect(await refused.text()).toMatch(/failing/);
	expect(Number(refused.headers.get("retry-after-ms"))).toBeGreaterThan(0);
	expect(upstream.sent.length).toBe(sentBefore); // not sent: the breaker answered
	expect((await status("breaker")).provider.state).not.toBe("closed");

	upstream.mock.configure({ fault: "none" });
	await vi.waitFor(async () => expect((await send("breaker")).status).toBe(200), {
		timeout: 3000,
		interval: 100,
	});
	expect((await status("breaker")).provider.state).toBe("closed");
	await settled("breaker");
});
