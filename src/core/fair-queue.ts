// The waiting line of one pool in admission order: priority classes, weighted fair shares between
// tenants of a class, first in first out within a tenant's class, and aging: a tenant's line
// passed over for long rises a class. It knows no buckets: the scheduler walks it in order and
// says who was admitted, parked or shed.
import type { AheadQuery, Demand } from "./demand.ts";
import { noDemand } from "./demand.ts";
import { IndexedHeap } from "./indexed-heap.ts";
import { MinHeap } from "./min-heap.ts";
import { CLASS_COUNT } from "./priority.ts";
import {
	type ClassTotals,
	comesBefore,
	Entry,
	Line,
	type Node,
	TenantQueue,
	type Totals,
	type Waiter,
} from "./queue-lines.ts";

export { CLASS_COUNT, type Waiter };

/** What a new ask would find ahead of it, in the pool's, its model's and its tenant's terms. */
export type Verdict = "take" | "pass" | "park" | "stop";

const HEAP_GARBAGE_ALLOWANCE = 1024;

export class FairQueue {
	readonly #stepMs: number;
	#nowMs = Number.NEGATIVE_INFINITY;
	#seq = 0;
	readonly #byId = new Map<string, Entry>();
	readonly #tenants = new Map<string, TenantQueue>();
	readonly #tiers: IndexedHeap<Node>[] = [];
	readonly #virtualTimes: number[] = new Array(CLASS_COUNT).fill(0);
	/** The nodes a walk took out of their heaps, to put back; kept to spare an array per walk. */
	readonly #passed: Node[] = [];
	readonly #classes: ClassTotals[] = [];
	readonly #promotions = new IndexedHeap<Line>((a, b) => a.promoteAtMs < b.promoteAtMs, {
		get: (line) => line.promotionIndex,
		set: (line, index) => {
			line.promotionIndex = index;
		},
	});
	readonly #shedOrder = new IndexedHeap<Line>(shedsFirst, {
		get: (line) => line.shedIndex,
		set: (line, index) => {
			line.shedIndex = index;
		},
	});
	// Lazy deletion: waiters that left stay here until they surface or a rebuild.
	readonly #deadlines = new MinHeap<Entry>((entry) => entry.deadlineMs);

	/** A waiter rises one class for every `stepMs` it waits. */
	constructor(stepMs: number) {
		this.#stepMs = stepMs;
		for (let tier = 0; tier < CLASS_COUNT; tier++) {
			this.#tiers.push(
				new IndexedHeap<Node>(servesFirst, {
					get: (node) => node.heapIndex,
					set: (node, index) => {
						node.heapIndex = index;
					},
				}),
			);
			this.#classes.push({ requests: 0, tokens: 0, byModel: new Map(), weight: 0, lineCount: 0 });
		}
	}

	get size(): number {
		return this.#byId.size;
	}

	has(ticketId: string): boolean {
		return this.#byId.has(ticketId);
	}

	sizeOf(tenant: string): number {
		return this.#tenants.get(tenant)?.size ?? 0;
	}

	/** The class a line of class `rank` whose front has waited since sinceMs has risen to by nowMs. */
	tierAt(rank: number, sinceMs: number, nowMs: number): number {
		let tier = rank;
		while (tier > 0 && sinceMs + (rank - tier + 1) * this.#stepMs <= nowMs) tier--;
		return tier;
	}

	/** Lets time pass: waiters whose wait has earned it rise a class. */
	advance(nowMs: number): void {
		if (nowMs > this.#nowMs) this.#nowMs = nowMs;
		for (let line = this.#promotions.peek(); line && line.promoteAtMs <= this.#nowMs; ) {
			this.#refresh(line, true);
			line = this.#promotions.peek();
		}
	}

	add(waiter: Omit<Waiter, "seq" | "waiting">, weight: number): Waiter {
		const owner = this.#tenantQueue(waiter.tenant, weight);
		let line = owner.lines[waiter.rank];
		if (!line) {
			line = new Line(owner, waiter.rank);
			owner.lines[waiter.rank] = line;
		}
		const entry = new Entry(waiter, ++this.#seq, line);
		(entry.retry ? line.retries : line.firsts).add(entry);
		this.#count(entry, 1);
		this.#byId.set(entry.ticketId, entry);
		this.#deadlines.push(entry);
		if (this.#deadlines.size > 2 * this.size + HEAP_GARBAGE_ALLOWANCE) {
			this.#deadlines.retain((queued) => queued.waiting);
		}
		this.#refresh(line);
		return entry;
	}

	remove(ticketId: string): Waiter | undefined {
		const entry = this.#byId.get(ticketId);
		if (entry) this.#remove(entry);
		return entry;
	}

	/**
	 * Walks the waiters in admission order: each tier's tenants by fair tag, higher tiers first,
	 * and for each the first `depth` of its line. `visit` admits one ("take": it is removed and its
	 * tenant charged `costMs`), passes over it, parks its tenant's tier until unpark() (only the
	 * first of a line may), or stops. At most `limit` waiters are
	 * visited, parked ones not counted. Returns the one taken.
	 */
	walk(
		limit: number,
		depth: number,
		visit: (waiter: Waiter, firstInLine: boolean) => Verdict,
		costMs: (waiter: Waiter) => number,
	): Waiter | undefined {
		const passed = this.#passed;
		passed.length = 0;
		let visited = 0;
		let taken: Entry | undefined;
		let stopped = false;
		for (let tier = 0; tier < CLASS_COUNT && !stopped; tier++) {
			const heap = this.#tiers[tier] as IndexedHeap<Node>;
			// The node at the top stays in its heap unless the walk moves past it or parks it: most
			// walks end at the first node, and then nothing needs re-filing.
			for (let node = heap.peek(); node && !stopped; node = stopped ? undefined : heap.peek()) {
				const line = node.first as Line;
				let inLine = 0;
				// The line's next without an iterator: most walks stop there.
				for (let entry = line.next() as Entry, rest: Iterator<Entry> | undefined; ; ) {
					const verdict = visit(entry, inLine === 0);
					if (verdict === "park" && inLine === 0) {
						node.parked = true;
						break;
					}
					visited++;
					inLine++;
					if (verdict === "take") {
						taken = entry;
						this.#serve(entry, costMs(entry), visited === 1);
					}
					stopped = verdict === "take" || verdict === "stop" || visited >= limit;
					if (stopped || inLine >= depth) break;
					if (!rest) {
						rest = line.inOrder();
						rest.next();
					}
					const following = rest.next();
					if (following.done) break;
					entry = following.value;
				}
				if (node.parked) {
					heap.delete(node);
				} else if (!stopped) {
					heap.delete(node);
					passed.push(node);
				}
			}
		}
		for (const node of passed) if (node.lines.length > 0 && !node.parked) this.#placeNode(node);
		return taken;
	}

	/** A tenant's new weight, for its shares from now on. */
	setWeight(tenant: string, weight: number): void {
		const owner = this.#tenants.get(tenant);
		if (!owner || owner.weight === weight) return;
		owner.lines.forEach((line, rank) => {
			const totals = this.#classes[rank];
			if (line && line.size > 0 && totals) totals.weight += weight - owner.weight;
		});
		owner.weight = weight;
	}

	/** Puts a tenant's parked tiers back in line, at no credit for the time they stood aside. */
	unpark(tenant: string): void {
		const owner = this.#tenants.get(tenant);
		if (!owner) return;
		for (const node of owner.nodes) {
			if (!node.parked) continue;
			node.parked = false;
			node.startTag = Math.max(node.startTag, this.#virtualTimes[node.tier] as number);
			if (node.lines.length > 0) this.#placeNode(node);
		}
	}

	/** The waiter to shed first: of the lowest class asked for, the newest (of one tenant's). */
	victim(tenant?: string): Waiter | undefined {
		let line: Line | undefined;
		if (tenant === undefined) {
			line = this.#shedOrder.peek();
		} else {
			for (const candidate of this.#tenants.get(tenant)?.lines ?? []) {
				if (candidate && candidate.size > 0 && (!line || shedsFirst(candidate, line))) {
					line = candidate;
				}
			}
		}
		return line?.newest();
	}

	earliestDeadlineMs(): number | undefined {
		return this.#liveDeadline()?.deadlineMs;
	}

	/** Removes and returns one waiter whose deadline is at or before nowMs, if any. */
	popOverdue(nowMs: number): Waiter | undefined {
		// Nothing is due while even the earliest, live or not, is later: leave the dead ones be.
		if (!((this.#deadlines.peek()?.deadlineMs ?? Number.POSITIVE_INFINITY) <= nowMs)) {
			return undefined;
		}
		const entry = this.#liveDeadline();
		if (!entry || entry.deadlineMs > nowMs) return undefined;
		this.#remove(entry);
		return entry;
	}

	/**
	 * Upcoming promotions, earliest first, at most `limit`: when each line rises, the waiter it
	 * would serve next, and the tier it rises to.
	 */
	upcomingPromotions(limit: number): { atMs: number; waiter: Waiter; tier: number }[] {
		const lines: Line[] = [];
		for (let line = this.#promotions.pop(); line; line = this.#promotions.pop()) {
			lines.push(line);
			if (lines.length >= limit) break;
		}
		for (const line of lines) this.#promotions.push(line);
		return lines.map((line) => ({
			atMs: line.promoteAtMs,
			waiter: line.next() as Entry,
			tier: line.tier - 1,
		}));
	}

	/** The tier a waiter's line will stand in at atMs, if its front is still there. */
	lineTierAt(waiter: Waiter, atMs: number): number {
		const { line } = waiter as Entry;
		return this.tierAt(line.rank, line.frontSinceMs, atMs);
	}

	/** Whether a waiter's tenant's tier is set aside. */
	isParked(waiter: Waiter): boolean {
		return (waiter as Entry).line.node?.parked === true;
	}

	/** Demand that would be admitted before a new ask (an estimate: fair shares are approximated). */
	ahead(query: AheadQuery, costOf: (requests: number, tokens: number) => number): Demand {
		const demand = noDemand();
		const owner = this.#tenants.get(query.tenant);
		for (let rank = 0; rank < CLASS_COUNT; rank++) {
			const totals = this.#classes[rank] as ClassTotals;
			if (totals.requests === 0) continue;
			const line = owner?.lines[rank];
			let own = line?.totals;
			let requests = totals.requests;
			let tokens = totals.tokens;
			if (rank > query.rank) {
				// A lower class: each of its lines' fronts rises past the ask after standing at the
				// front for (rank - query.rank) steps, at most, then the next front, and so on.
				const perLine = Math.floor(query.withinMs / ((rank - query.rank) * this.#stepMs));
				requests = Math.min(totals.requests, totals.lineCount * perLine);
				tokens = (requests * totals.tokens) / totals.requests;
				const ownRequests = Math.min(line?.size ?? 0, perLine);
				own = {
					requests: ownRequests,
					tokens: (ownRequests * (line?.totals.tokens ?? 0)) / (line?.size || 1),
				};
			} else if (rank === query.rank) {
				// Its own class: its tenant's line ahead of it, and the others' fair share meanwhile.
				own = query.retry ? line?.retryTotals : line?.totals;
				const otherRequests = totals.requests - (line?.totals.requests ?? 0);
				const otherTokens = totals.tokens - (line?.totals.tokens ?? 0);
				const otherWeight = totals.weight - (line && line.size > 0 ? line.owner.weight : 0);
				const otherCostMs = costOf(otherRequests, otherTokens);
				const ownCostMs = costOf((own?.requests ?? 0) + 1, (own?.tokens ?? 0) + query.tokens);
				const otherShare =
					otherCostMs > 0 ? Math.min(1, (ownCostMs * otherWeight) / query.weight / otherCostMs) : 0;
				requests = (own?.requests ?? 0) + otherShare * otherRequests;
				tokens = (own?.tokens ?? 0) + otherShare * otherTokens;
			}
			demand.requests += requests;
			demand.tokens += tokens;
			// Within its own class and below, the model's part is apportioned like the requests.
			const model = totals.byModel.get(query.model);
			if (model) {
				const share = requests / totals.requests;
				demand.modelRequests += share * model.requests;
				demand.modelTokens += share * model.tokens;
			}
			demand.tenantRequests += own?.requests ?? 0;
			demand.tenantTokens += own?.tokens ?? 0;
		}
		return demand;
	}

	/** Everything waiting, as demand on the pool, on a model and on a tenant. */
	all(tenant: string, model: string): Demand {
		const demand = noDemand();
		const owner = this.#tenants.get(tenant);
		for (let rank = 0; rank < CLASS_COUNT; rank++) {
			const totals = this.#classes[rank] as ClassTotals;
			const byModel = totals.byModel.get(model);
			const own = owner?.lines[rank]?.totals;
			demand.requests += totals.requests;
			demand.tokens += totals.tokens;
			demand.modelRequests += byModel?.requests ?? 0;
			demand.modelTokens += byModel?.tokens ?? 0;
			demand.tenantRequests += own?.requests ?? 0;
			demand.tenantTokens += own?.tokens ?? 0;
		}
		return demand;
	}

	oldestSubmittedMs(): number | undefined {
		let oldest: number | undefined;
		for (const owner of this.#tenants.values()) {
			for (const line of owner.lines) {
				const submittedMs = line?.oldest()?.submittedMs;
				if (submittedMs !== undefined && (oldest === undefined || submittedMs < oldest)) {
					oldest = submittedMs;
				}
			}
		}
		return oldest;
	}

	/** Waiters by the class they asked for. */
	countsByClass(): number[] {
		return this.#classes.map((totals) => totals.requests);
	}

	countsByTenant(): Map<string, number> {
		const counts = new Map<string, number>();
		for (const [name, owner] of this.#tenants) if (owner.size > 0) counts.set(name, owner.size);
		return counts;
	}

	waiters(): IterableIterator<Waiter> {
		return this.#byId.values();
	}

	#tenantQueue(name: string, weight: number): TenantQueue {
		let owner = this.#tenants.get(name);
		if (!owner) {
			owner = new TenantQueue(name, weight);
			this.#tenants.set(name, owner);
		}
		return owner;
	}

	#serve(entry: Entry, costMs: number, inOrder: boolean): void {
		const node = entry.line.node as Node;
		if (inOrder) this.#virtualTimes[node.tier] = node.startTag;
		node.startTag += costMs / node.owner.weight;
		node.owner.finishTags[node.tier] = node.startTag;
		this.#remove(entry);
		// Its tag moved: re-file it (its line may have left it, or left it empty).
		if (node.lines.length > 0) this.#placeNode(node);
	}

	#remove(entry: Entry): void {
		entry.waiting = false;
		this.#byId.delete(entry.ticketId);
		const { line } = entry;
		(entry.retry ? line.retries : line.firsts).left();
		this.#count(entry, -1);
		this.#refresh(line);
	}

	/** Adds (sign 1) or takes away (sign -1) a waiter in the running totals. */
	#count(entry: Entry, sign: 1 | -1): void {
		const { line, tokens } = entry;
		const totals = this.#classes[entry.rank] as ClassTotals;
		if (sign === 1 && line.size === 0) {
			totals.weight += line.owner.weight;
			totals.lineCount++;
		}
		line.owner.size += sign;
		addTo(line.totals, sign, tokens);
		if (entry.retry) addTo(line.retryTotals, sign, tokens);
		addTo(totals, sign, tokens);
		let model = totals.byModel.get(entry.model);
		if (!model) {
			model = { requests: 0, tokens: 0 };
			totals.byModel.set(entry.model, model);
		}
		if (addTo(model, sign, tokens) === 0) totals.byModel.delete(entry.model);
		if (sign === -1 && line.size === 0) {
			totals.weight = totals.requests === 0 ? 0 : totals.weight - line.owner.weight;
			totals.lineCount--;
		}
	}

	/**
	 * Re-files a line after it changed, or after time passed (`aged`): its tier, node, promotion
	 * time and shedding order, each only if the end of the line it depends on changed.
	 */
	#refresh(line: Line, aged = false): void {
		const oldest = line.oldest();
		const newest = line.newest();
		if (!oldest || !newest) {
			this.#detach(line);
			line.tier = -1;
			line.oldestSeen = line.newestSeen = undefined;
			this.#promotions.delete(line);
			this.#shedOrder.delete(line);
			return;
		}
		if (newest !== line.newestSeen) {
			line.newestSeen = newest;
			this.#shedOrder.update(line);
		}
		if (oldest === line.oldestSeen && !aged) return;
		if (oldest.frontSinceMs === undefined) {
			// First at the front: since it arrived, if it found the line empty or came in ahead of
			// the front (re-submitted); else since the waiter before it left.
			const before = line.oldestSeen;
			const cameInFront = !before || before.waiting;
			oldest.frontSinceMs = cameInFront
				? oldest.submittedMs
				: Math.max(oldest.submittedMs, this.#nowMs);
		}
		line.frontSinceMs = oldest.frontSinceMs;
		line.oldestSeen = oldest;
		const tier = this.tierAt(line.rank, line.frontSinceMs, this.#nowMs);
		if (tier !== line.tier || !line.node) {
			this.#detach(line);
			this.#attach(line, tier);
		} else {
			this.#placeNode(line.node);
		}
		line.promoteAtMs =
			tier > 0
				? line.frontSinceMs + (line.rank - tier + 1) * this.#stepMs
				: Number.POSITIVE_INFINITY;
		if (tier > 0) this.#promotions.update(line);
		else this.#promotions.delete(line);
	}

	#attach(line: Line, tier: number): void {
		const node = line.owner.nodes[tier] as Node;
		line.tier = tier;
		line.node = node;
		node.lines.push(line);
		if (node.lines.length === 1) {
			node.startTag = Math.max(
				this.#virtualTimes[tier] as number,
				line.owner.finishTags[tier] as number,
			);
		}
		this.#placeNode(node);
	}

	#detach(line: Line): void {
		const node = line.node;
		if (!node) return;
		line.node = undefined;
		node.lines.splice(node.lines.indexOf(line), 1);
		if (node.lines.length > 0) {
			this.#placeNode(node);
			return;
		}
		(this.#tiers[node.tier] as IndexedHeap<Node>).delete(node);
		node.first = undefined;
	}

	/** Finds the node's oldest line and re-files the node in its tier. */
	#placeNode(node: Node): void {
		let first: Line | undefined;
		let oldest: Entry | undefined;
		for (const line of node.lines) {
			const candidate = line.oldest();
			if (candidate && (!oldest || comesBefore(candidate, oldest))) {
				first = line;
				oldest = candidate;
			}
		}
		node.first = first;
		if (!oldest) return;
		node.oldestMs = oldest.submittedMs;
		node.oldestSeq = oldest.seq;
		if (!node.parked) (this.#tiers[node.tier] as IndexedHeap<Node>).update(node);
	}

	#liveDeadline(): Entry | undefined {
		let entry = this.#deadlines.peek();
		while (entry && !entry.waiting) {
			this.#deadlines.pop();
			entry = this.#deadlines.peek();
		}
		return entry;
	}
}

function servesFirst(a: Node, b: Node): boolean {
	if (a.startTag !== b.startTag) return a.startTag < b.startTag;
	if (a.oldestMs !== b.oldestMs) return a.oldestMs < b.oldestMs;
	return a.oldestSeq < b.oldestSeq;
}

/** Lowest class asked for first, then newest. */
function shedsFirst(a: Line, b: Line): boolean {
	if (a.rank !== b.rank) return a.rank > b.rank;
	const newestA = a.newest();
	const newestB = b.newest();
	return newestA !== undefined && newestB !== undefined && comesBefore(newestB, newestA);
}

/** Adds or removes one request of `tokens`; returns the requests left. */
function addTo(totals: Totals, sign: 1 | -1, tokens: number): number {
	totals.requests += sign;
	// An empty total restarts from exact zero, so float sums cannot drift over a long life.
	totals.tokens = totals.requests === 0 ? 0 : totals.tokens + sign * tokens;
	return totals.requests;
}
