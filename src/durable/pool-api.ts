// The Pool object's public surface: what the Worker sends it and what it answers, the only Pool
// types the gateway sees.

import type { ReportedLimits } from "../core/limit-learning.ts";
import type { AllowanceAnswer, AllowanceBatch } from "../core/pool-allowances.ts";
import type { AttemptReport, PoolStateStatus } from "../core/pool-state.ts";
import { PRIORITIES, type Priority } from "../core/priority.ts";
import type { BucketView, Lease, RateLimitView, Rejection } from "../core/scheduler.ts";

export type {
	AllowanceAnswer,
	AllowanceBatch,
	AttemptReport,
	BucketView,
	Lease,
	Priority,
	RateLimitView,
	ReportedLimits,
};
export { PRIORITIES };
export type PoolObjectStatus = PoolStateStatus;

export interface AcquireRequest {
	/** The request's ticket: the same for every send of it. */
	ticketId: string;
	tenant: string;
	model: string;
	priority: Priority;
	tokens: number;
	/** How long the caller will wait in the queue, measured on this object's clock. */
	maxWaitMs: number;
	/** Time this request already waited in an instance of the object that restarted. */
	priorWaitMs?: number;
	/** A batch line: admitted only onto spare capacity, else refused at once (core/background.ts). */
	background?: boolean;
}

type Answer = { queueMs: number; limits: RateLimitView };

export type AcquireResult =
	| ({ kind: "admitted"; lease: Lease } & Answer)
	| (Rejection & Answer)
	| ({ kind: "cancelled" } & Answer)
	/** The provider is failing: the circuit breaker answers at once instead of queueing. */
	| ({ kind: "unavailable"; retryAfterMs: number; message: string } & Answer);

/** After a send that did not succeed: the next send's admission, or the end of the request. */
export type AttemptAnswer =
	| AcquireResult
	| ({ kind: "final"; reason: string; retryAfterMs?: number } & Answer);
