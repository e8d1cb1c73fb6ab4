// Through the Worker: requests that do not fit wait instead of failing, deadlines and a full queue
// answer at once with retry-after, and a provider 429 is absorbed by one pool-wide pause.
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => {
	upstream?.restore();
	vi.restoreAllMocks();
});

const chat = {
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: "Say hello" }],
	max_tokens: 16,
};

const send = (pool: string, headers: Record<string, string> = {}) =>
	postToPool(pool, { headers, body: chat });

it("requests beyond the burst wait for the bucket and are then served, not rejected", async () => {
	upstream = installMockUpstream();
	// "tight": burst of 2 requests, then one a second.
	const started = Date.now();
	const responses = await Promise.all([send("tight"), send("tight"), send("tight")]);
	expect(responses.map((response) => response.status)).toEqual([200, 200, 200]);
	const queueMs = responses.map((response) => Number(response.headers.get("x-tollbooth-queue-ms")));
	expect(Math.max(...queueMs)).toBeGreaterThanOrEqual(800);
	expect(Date.now() - started).toBeGreaterThanOrEqual(800);
});

it("a caller whose wait would pass its x-max-wait-ms hears so at once, with retry-after", async () => {
	upstream = installMockUpstream();
	await Promise.all([send("tight-deadline"), send("tight-deadline")]); // the burst is spent
	const started = Date.now();
	const response = await send("tight-deadline", { "x-max-wait-ms": "100" });
	expect(response.status).toBe(429);
	expect(Date.now() - started).toBeLessThan(500);
	expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
	expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("0");
	expect(response.headers.get("x-tollbooth-pool")).toBe("tight-deadline");
	const body = (await response.json()) as { error: { message: string } };
	expect(body.error.message.length).toBeGreaterThan(10);
});

it("a full queue answers 503 with retry-after", async () => {
	upstream = installMockUpstream();
	// 2 admitted from the burst, 3 queued (maxQueueLength 3), the 6th finds the queue full.
	const responses = await Promise.all(Array.from({ length: 6 }, () => send("tight-full")));
	const statuses = responses.map((response) => response.status).sort();
	expect(statuses).toEqual([200, 200, 200, 200, 200, 503]);
	const full = responses.find((response) => response.status === 503);
	expect(Number(full?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
});

it("a provider 429 never reaches the caller: the whole pool pauses for retry-after, then resends", async () => {
	const retryAfterMs = 400;
	upstream = installMockUpstream({}, (_request, attempt) =>
		attempt === 1
			? Response.json(
					{
						error: {
							message: "Rate limit reached",
							type: "requests",
							param: null,
							code: "rate_limit_exceeded",
						},
					},
					{ status: 429, headers: { "retry-after-ms": String(retryAfterMs), "retry-after": "1" } },
				)
			: undefined,
	);
	const first = send("openai");
	await vi.waitFor(() => expect(upstream?.sent.length).toBe(1));
	const second = send("openai"); // arrives while the pool is paused

	const [a, b] = await Promise.all([first, second]);
	expect(a.status).toBe(200);
	expect(b.status).toBe(200);
	expect(a.headers.get("x-tollbooth-retries")).toBe("1");
	const times = upstream.sent.map((sent) => sent.atMs);
	expect(times).toHaveLength(3);
	// retry-after-ms wins over retry-after; nothing is sent to the provider before it has passed.
	const [rateLimitedAt, ...later] = times as [number, ...number[]];
	for (const at of later) expect(at - rateLimitedAt).toBeGreaterThanOrEqual(retryAfterMs - 5);
	const status = await env.POOL.getByName("openai").status();
	expect(status.pausedUntilMs).toBeGreaterThan(0);
});

it("every request writes one usage data point, rejected ones too", async () => {
	upstream = installMockUpstream();
	const points: AnalyticsEngineDataPoint[] = [];
	vi.spyOn(env.USAGE, "writeDataPoint").mockImplementation((point) => {
		if (point) points.push(point);
	});
	await (await send("openai")).text();
	await (await send("openai", { authorization: "Bearer wrong" })).text();
	await vi.waitFor(() => expect(points).toHaveLength(2));
	const [ok, rejected] = points;
	expect(ok?.indexes).toEqual(["team-a"]);
	expect(ok?.blobs?.slice(0, 5)).toEqual(["team-a", "openai", "gpt-4o-mini", "ok", "normal"]);
	expect(ok?.doubles?.[0]).toBe(200);
	expect(ok?.doubles?.[1]).toBeGreaterThan(0); // prompt tokens
	expect(ok?.doubles?.[2]).toBeGreaterThan(0); // completion tokens
	expect(rejected?.blobs?.[3]).toBe("rejected");
	expect(rejected?.doubles?.[0]).toBe(401);
	const serialized = JSON.stringify(points);
	expect(serialized).not.toContain(TEST_KEYS.teamA);
});

it("a pool that cannot serve in time overflows to its fallback pool, with the model mapped", async () => {
	upstream = installMockUpstream();
	await Promise.all([send("with-fallback"), send("with-fallback")]); // the burst is spent
	const response = await send("with-fallback", { "x-max-wait-ms": "100" });
	expect(response.status).toBe(200);
	expect(response.headers.get("x-tollbooth-pool")).toBe("overflow");
	expect(JSON.parse(upstream.sent.at(-1)?.body ?? "{}").model).toBe("gpt-4o-mini-2");
});
