// The exact usage ledger's additions: what a settled request adds to its row (day, end user and
// model), and a batch's additions summed per row, so a batch costs one row write per row it touches.
import type { Settled } from "./budget.ts";

export interface LedgerAddition {
	day: string;
	user: string;
	model: string;
	requests: number;
	inputTokens: number;
	cachedInputTokens: number;
	outputTokens: number;
	nanoUsd: number;
}

/** The provider's report of a settled request's tokens; none: its estimate is what it used. */
export interface ReportedTokens {
	inputTokens: number;
	cachedInputTokens: number;
	outputTokens: number;
}

/** What one settled request adds to the ledger. */
export function ledgerAddition(
	{ reservation, charged }: Settled,
	reported: ReportedTokens | undefined,
): LedgerAddition {
	return {
		day: reservation.day,
		user: reservation.user,
		model: reservation.model,
		requests: 1,
		inputTokens: reported?.inputTokens ?? reservation.promptTokens,
		cachedInputTokens: reported?.cachedInputTokens ?? 0,
		outputTokens: reported?.outputTokens ?? reservation.estimate.tokens - reservation.promptTokens,
		nanoUsd: charged.nanoUsd,
	};
}

/** `additions` summed per ledger row, in the order each row first appears. */
export function sumPerRow(additions: Iterable<LedgerAddition>): LedgerAddition[] {
	const rows = new Map<string, LedgerAddition>();
	for (const addition of additions) {
		const key = JSON.stringify([addition.day, addition.user, addition.model]);
		const row = rows.get(key);
		if (!row) {
			rows.set(key, { ...addition });
			continue;
		}
		row.requests += addition.requests;
		row.inputTokens += addition.inputTokens;
		row.cachedInputTokens += addition.cachedInputTokens;
		row.outputTokens += addition.outputTokens;
		row.nanoUsd += addition.nanoUsd;
	}
	return [...rows.values()];
}
