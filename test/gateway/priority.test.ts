// Through the Worker: priorities are capped by the tenant's policy, go first when they wait, and
// push the lowest waiters out of a full queue; a caller turned away hears where it stood.
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { CHAT, postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

/** The message says the priority, so the provider's log shows the order requests went in. */
const send = (pool: string, headers: Record<string, string> = {}, key: string = TEST_KEYS.teamA) =>
	postToPool(pool, {
		headers,
		key,
		body: { ...CHAT, messages: [{ role: "user", content: headers["x-priority"] ?? "default" }] },
	});

const queued = async (pool: string) => (await env.POOL.getByName(pool).status()).queued;

it("caps x-priority at the tenant's maximum, silently, and says so in the answer", async () => {
	upstream = installMockUpstream();
	// team-b may use "openai" up to normal priority.
	const response = await send("openai", { "x-priority": "critical" }, TEST_KEYS.teamB);
	expect(response.status).toBe(200);
	expect(response.headers.get("x-tollbooth-priority")).toBe("normal");
	expect(response.headers.get("x-tollbooth-priority-capped-from")).toBe("critical");
	const uncapped = await send("openai", { "x-priority": "high" });
	expect(uncapped.headers.get("x-tollbooth-priority")).toBe("high");
	expect(uncapped.headers.get("x-tollbooth-priority-capped-from")).toBeNull();
});

it("a high-priority request that arrives later is sent before a waiting low one", async () => {
	upstream = installMockUpstream();
	await Promise.all([send("tight-priority"), send("tight-priority")]); // the burst is spent
	const low = send("tight-priority", { "x-priority": "low" });
	await vi.waitFor(async () => expect(await queued("tight-priority")).toBe(1), { interval: 10 });
	const high = send("tight-priority", { "x-priority": "high" });
	expect((await high).status).toBe(200);
	expect((await low).status).toBe(200);
	const order = upstream.sent.slice(2).map((sent) => JSON.parse(sent.body).messages[0].content);
	expect(order).toEqual(["high", "low"]);
});

it("a full queue sheds its lowest, newest waiter for a higher arrival: 503, retry-after and its place", async () => {
	upstream = installMockUpstream();
	await Promise.all([send("tight-shed"), send("tight-shed")]); // the burst is spent
	// maxQueueLength is 3: fill it with low waiters, then a high one arrives.
	const lows = [0, 1, 2].map(() => send("tight-shed", { "x-priority": "low" }));
	await vi.waitFor(async () => expect(await queued("tight-shed")).toBe(3), { interval: 10 });
	const high = send("tight-shed", { "x-priority": "high" });

	const shed = await Promise.race(lows);
	expect(shed.status).toBe(503);
	expect(Number(shed.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
	const body = (await shed.json()) as { error: { message: string; queue_position?: number } };
	expect(body.error.message).toMatch(/priority/i);
	expect((await high).status).toBe(200);
	const statuses = (await Promise.all(lows)).map((response) => response.status).sort();
	expect(statuses).toEqual([200, 200, 503]);
});

it("a deadline rejection tells the caller its place in the queue and its estimated wait", async () => {
	upstream = installMockUpstream();
	await Promise.all([send("tight-deadline"), send("tight-deadline")]);
	const response = await send("tight-deadline", { "x-max-wait-ms": "50" });
	expect(response.status).toBe(429);
	const body = (await response.json()) as {
		error: { queue_position: number; estimated_wait_ms: number };
	};
	expect(body.error.queue_position).toBeGreaterThanOrEqual(1);
	expect(body.error.estimated_wait_ms).toBeGreaterThan(50);
});
