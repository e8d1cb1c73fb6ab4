// The pool's events as the log lines an operator reads in `wrangler tail` or Workers Logs.
import type { PoolEvent } from "../core/pool-state.ts";
import { log } from "../log.ts";

/** An event of the pool's, as the log line an operator reads in `wrangler tail`. */
export function logPoolEvent(pool: string | undefined, event: PoolEvent): void {
	if (event.event === "pause")
		log("pause", { pool, cause: "rate_limited", delayMs: event.retryAfterMs });
	else if (event.event === "retry") {
		log("retry", { pool, cause: event.reason, attempt: event.attempt, delayMs: event.delayMs });
	} else log("breaker", { pool, state: event.to, cause: `was ${event.from}` });
}
