// Decisions per second of submit + tick + release in plain Node, with 0, 1k and 100k waiters:
// node --experimental-strip-types test/core/measure-decisions.ts
import { PRIORITIES } from "../../src/core/priority.ts";
import { type Ask, Scheduler } from "../../src/core/scheduler.ts";

const TENANTS = 10;
const ROUNDS = 400_000;

function ask(id: number, nowMs: number): Ask {
	return {
		ticketId: `t${id}`,
		tenant: `tenant${id % TENANTS}`,
		model: "m",
		priority: PRIORITIES[id % 3 === 0 ? 1 : 2] ?? "normal",
		tokens: 100,
		deadlineMs: nowMs + 1e12,
	};
}

/**
 * With `waiting` waiters standing in the queue, each round lets one request refill, submits one
 * ask (queued at the back), ticks (the head is admitted) and releases the lease.
 */
function measure(waiting: number): number {
	const empty = waiting === 0;
	const scheduler = new Scheduler({
		limits: {
			requestsPerMinute: empty ? 6e12 : 60_000, // one per ms when a queue stands
			tokensPerMinute: 6e12,
			burstRequests: empty ? 1e12 : 1,
			burstTokens: 1e12,
			maxConcurrent: 1_000_000,
			models: {},
		},
		leaseTtlMs: 1e12,
		maxQueueLength: 1_000_000,
		maxQueuePerTenant: 1_000_000,
		tenants: {},
		maxWaitMsByPriority: { critical: 1e12, high: 1e12, normal: 1e12, low: 1e12 },
		agingBoundMs: 1e12,
		headroom: { floor: 0, horizonMs: 1_000 },
	});
	let id = 0;
	let nowMs = 1_000_000;
	scheduler.submit(ask(id++, nowMs), nowMs); // takes the one request in the bucket
	for (let i = 0; i < waiting; i++) scheduler.submit(ask(id++, nowMs), nowMs);
	let decisions = 0;
	const startedNs = process.hrtime.bigint();
	for (let round = 0; round < ROUNDS; round++) {
		if (!empty) nowMs += 1;
		const decision = scheduler.submit(ask(id++, nowMs), nowMs);
		if (decision.kind === "admitted") {
			decisions++;
			scheduler.release(decision.lease.ticketId, 100, nowMs);
		}
		for (const outcome of scheduler.tick(nowMs)) {
			if (outcome.result.kind !== "admitted") throw new Error(`${outcome.ticketId} rejected`);
			decisions++;
			scheduler.release(outcome.ticketId, 100, nowMs);
		}
	}
	const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
	if (scheduler.status(nowMs).queued !== waiting) throw new Error("the queue did not hold steady");
	return decisions / seconds;
}

// The best of three runs after a warm-up: the machine may be busy with other work.
for (const waiting of [0, 1_000, 100_000]) {
	measure(waiting);
	const perSecond = Math.max(measure(waiting), measure(waiting), measure(waiting));
	console.log(`${waiting} waiting: ${Math.round(perSecond).toLocaleString("en")} decisions/s`);
}
