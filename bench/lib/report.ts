// A scenario's output: a short table on stdout and a JSON report in bench/results/<scenario>.json.
import { mkdir, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";

const RESULTS_DIRECTORY = resolve(import.meta.dirname, "../results");

/** One row of the printed table; `target` says what the figure must meet, when it has to. */
export interface Row {
	label: string;
	value: string;
	target?: string;
	met?: boolean;
}

export function printTable(title: string, rows: readonly Row[]): void {
	const labelWidth = Math.max(...rows.map((row) => row.label.length));
	const valueWidth = Math.max(...rows.map((row) => row.value.length));
	console.log(`\n${title}`);
	for (const row of rows) {
		const verdict = row.met === undefined ? "" : row.met ? "  ok  " : "  MISS";
		const target = row.target === undefined ? "" : `${verdict} (target ${row.target})`;
		console.log(`  ${row.label.padEnd(labelWidth)}  ${row.value.padStart(valueWidth)}${target}`);
	}
}

/** A report's fields beyond scenario, finishedAt and rows; chart(s) are paths to print. */
export interface ReportFields {
	chart?: string;
	charts?: readonly string[];
	[field: string]: unknown;
}

/** A scenario's ending: its table, then {@link saveReport}. */
export async function finish(
	scenario: string,
	title: string,
	rows: readonly Row[],
	report: ReportFields,
): Promise<boolean> {
	printTable(title, rows);
	return saveReport(scenario, rows, report);
}

/**
 * The ending for a scenario that prints its own tables: writes bench/results/<scenario>.json (the
 * fields plus scenario, finishedAt and rows), prints where it and its charts are, and returns true
 * when every row met its target.
 */
export async function saveReport(
	scenario: string,
	rows: readonly Row[],
	report: ReportFields,
): Promise<boolean> {
	const full = { scenario, finishedAt: new Date().toISOString(), rows, ...report };
	const path = await writeResult(`${scenario}.json`, `${JSON.stringify(full, null, "\t")}\n`);
	let charts = "";
	if (report.chart !== undefined) charts = `; chart: ${report.chart}`;
	else if (report.charts !== undefined) charts = `; charts: ${report.charts.join(", ")}`;
	console.log(`  report: ${path}${charts}`);
	return rows.every((row) => row.met !== false);
}

/** Writes an SVG picture beside the report (bench/results/<name>.svg) and returns its path. */
export function writeChart(name: string, svg: string): Promise<string> {
	return writeResult(`${name}.svg`, svg);
}

/** Writes bench/results/<fileName> and returns its path relative to the working directory. */
async function writeResult(fileName: string, text: string): Promise<string> {
	await mkdir(RESULTS_DIRECTORY, { recursive: true });
	const path = join(RESULTS_DIRECTORY, fileName);
	await writeFile(path, text);
	return relative(process.cwd(), path);
}

export function percent(fraction: number, digits = 1): string {
	return `${(fraction * 100).toFixed(digits)}%`;
}

export function milliseconds(value: number): string {
	return Number.isFinite(value) ? `${Math.round(value)} ms` : "n/a";
}
