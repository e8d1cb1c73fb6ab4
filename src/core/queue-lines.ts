// The fair queue's parts: a waiter's entry, one tenant's line of one class (first attempts and
// the retries served ahead of them), a tenant's lines standing in one tier, and the tenant.
import { CLASS_COUNT } from "./priority.ts";
import { type InLine, WaiterLine } from "./waiter-line.ts";

export interface Waiter extends InLine {
	readonly ticketId: string;
	readonly tenant: string;
	readonly model: string;
	readonly tokens: number;
	/** The class the caller asked for (0 = critical). */
	readonly rank: number;
	readonly retry: boolean;
	/** Which send of its request it waits for (1 = the first). */
	readonly attempt?: number;
	readonly deadlineMs: number;
}

export interface Totals {
	requests: number;
	tokens: number;
}

export interface ClassTotals extends Totals {
	readonly byModel: Map<string, Totals>;
	/** Summed weight of the tenants with waiters of this class. */
	weight: number;
	/** Tenants with waiters of this class: its lines. */
	lineCount: number;
}

export class Entry implements Waiter {
	readonly ticketId: string;
	readonly tenant: string;
	readonly model: string;
	readonly tokens: number;
	readonly rank: number;
	readonly retry: boolean;
	readonly attempt: number | undefined;
	readonly submittedMs: number;
	readonly deadlineMs: number;
	readonly seq: number;
	readonly line: Line;
	waiting = true;
	/** When it first stood at the front of its line; aging counts from then. */
	frontSinceMs: number | undefined = undefined;

	constructor(waiter: Omit<Waiter, "seq" | "waiting">, seq: number, line: Line) {
		this.ticketId = waiter.ticketId;
		this.tenant = waiter.tenant;
		this.model = waiter.model;
		this.tokens = waiter.tokens;
		this.rank = waiter.rank;
		this.retry = waiter.retry;
		this.attempt = waiter.attempt;
		this.submittedMs = waiter.submittedMs;
		this.deadlineMs = waiter.deadlineMs;
		this.seq = seq;
		this.line = line;
	}
}

/** One tenant's waiters of one class: first attempts, and retries served ahead of them. */
export class Line {
	readonly owner: TenantQueue;
	readonly rank: number;
	readonly firsts = new WaiterLine<Entry>();
	readonly retries = new WaiterLine<Entry>();
	readonly totals: Totals = { requests: 0, tokens: 0 };
	readonly retryTotals: Totals = { requests: 0, tokens: 0 };
	/**
	 * Since when its oldest waiter has stood at its front: aging counts from then, so that a line
	 * rises for being passed over, not for being long (a backlog is its own tenant's doing). A
	 * waiter that joins at the front, re-submitted after a restart, brings its own age.
	 */
	frontSinceMs = 0;
	/** The class the line has risen to; its node is the owner's node of that tier. */
	tier = -1;
	node: Node | undefined;
	promoteAtMs = Number.POSITIVE_INFINITY;
	promotionIndex = -1;
	shedIndex = -1;
	/** The ends of the line when it was last re-filed. */
	oldestSeen: Entry | undefined;
	newestSeen: Entry | undefined;

	constructor(owner: TenantQueue, rank: number) {
		this.owner = owner;
		this.rank = rank;
	}

	get size(): number {
		return this.totals.requests;
	}

	oldest(): Entry | undefined {
		const retry = this.retries.front();
		const first = this.firsts.front();
		if (!retry || !first) return retry ?? first;
		return comesBefore(retry, first) ? retry : first;
	}

	/** The next to serve: its oldest retry, else its oldest first attempt. */
	next(): Entry | undefined {
		return this.retries.front() ?? this.firsts.front();
	}

	newest(): Entry | undefined {
		return this.firsts.back() ?? this.retries.back();
	}

	/** Its waiters in the order it serves them. */
	*inOrder(): Generator<Entry> {
		yield* this.retries;
		yield* this.firsts;
	}
}

/**
 * One tenant's lines that stand in one tier, with its start-time fair queuing
 * tag: the node with the smallest tag in a tier is served next, and serving it advances the tag
 * by the request's cost over the tenant's weight.
 */
export class Node {
	readonly owner: TenantQueue;
	readonly tier: number;
	readonly lines: Line[] = [];
	startTag = 0;
	first: Line | undefined;
	oldestMs = 0;
	oldestSeq = 0;
	heapIndex = -1;
	/** Set aside while its tenant is at a limit of its own. */
	parked = false;

	constructor(owner: TenantQueue, tier: number) {
		this.owner = owner;
		this.tier = tier;
	}
}

export class TenantQueue {
	readonly name: string;
	weight: number;
	readonly lines: (Line | undefined)[] = new Array(CLASS_COUNT).fill(undefined);
	readonly nodes: Node[] = [];
	/** Where each tier's tag resumes when the tenant has waiters there again. */
	readonly finishTags: number[] = new Array(CLASS_COUNT).fill(0);
	size = 0;

	constructor(name: string, weight: number) {
		this.name = name;
		this.weight = weight;
		for (let tier = 0; tier < CLASS_COUNT; tier++) this.nodes.push(new Node(this, tier));
	}
}

/** Past this many dead heap entries the deadline index is rebuilt from the live ones. */

export function comesBefore(a: InLine, b: InLine): boolean {
	return a.submittedMs < b.submittedMs || (a.submittedMs === b.submittedMs && a.seq < b.seq);
}
