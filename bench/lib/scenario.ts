// What bench/run.ts runs: a named scenario that starts what it needs, measures, reports and stops.

export interface Scenario {
	name: string;
	/** One line for `node bench/run.ts --list`. */
	summary: string;
	/** Resolves once everything it started has stopped; true when every target was met. */
	run(): Promise<boolean>;
}
