// A hand-written SVG line chart (axes, ticks, legend), for the pictures scenarios write beside their
// JSON reports: latency distributions, rates over time.

export interface Series {
	name: string;
	points: readonly (readonly [number, number])[];
	/** Drawn dashed, e.g. a limit or a reference. */
	dashed?: boolean;
}

export interface ChartOptions {
	title: string;
	xLabel: string;
	yLabel: string;
	series: readonly Series[];
	/** Axis ranges; by default from 0 to the largest value. */
	xMax?: number;
	yMax?: number;
	yMin?: number;
}

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 170, top: 40, bottom: 50 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f"];

function escapeXml(text: string): string {
	return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** About five round tick values from min to max. */
function ticks(min: number, max: number): number[] {
	const span = max - min || 1;
	const rough = span / 5;
	const magnitude = 10 ** Math.floor(Math.log10(rough));
	const step = ([1, 2, 5, 10].find((factor) => factor * magnitude >= rough) ?? 10) * magnitude;
	const values: number[] = [];
	for (let value = Math.ceil(min / step) * step; value <= max + step * 1e-9; value += step) {
		values.push(Number(value.toPrecision(12)));
	}
	return values;
}

export function lineChart(options: ChartOptions): string {
	const all = options.series.flatMap((series) => series.points);
	const xMax = options.xMax ?? Math.max(...all.map(([x]) => x), 1);
	const yMin = options.yMin ?? 0;
	const yMax = options.yMax ?? Math.max(...all.map(([, y]) => y), 1);
	const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
	const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
	const sx = (x: number) => MARGIN.left + (Math.min(x, xMax) / xMax) * plotWidth;
	const sy = (y: number) =>
		MARGIN.top +
		plotHeight -
		((Math.min(Math.max(y, yMin), yMax) - yMin) / (yMax - yMin)) * plotHeight;
	const parts: string[] = [
		`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
		`<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
		`<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(options.title)}</text>`,
	];
	for (const x of ticks(0, xMax)) {
		parts.push(
			`<line x1="${sx(x)}" y1="${MARGIN.top}" x2="${sx(x)}" y2="${MARGIN.top + plotHeight}" stroke="#eee"/>`,
			`<text x="${sx(x)}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle">${x}</text>`,
		);
	}
	for (const y of ticks(yMin, yMax)) {
		parts.push(
			`<line x1="${MARGIN.left}" y1="${sy(y)}" x2="${MARGIN.left + plotWidth}" y2="${sy(y)}" stroke="#eee"/>`,
			`<text x="${MARGIN.left - 6}" y="${sy(y) + 4}" text-anchor="end">${y}</text>`,
		);
	}
	parts.push(
		`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>`,
		`<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
		`<text transform="translate(16 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
	);
	options.series.forEach((series, index) => {
		const color = COLORS[index % COLORS.length];
		const path = series.points
			.map(([x, y], at) => `${at === 0 ? "M" : "L"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
			.join("");
		const dash = series.dashed ? ' stroke-dasharray="6 4"' : "";
		const legendY = MARGIN.top + 10 + index * 20;
		const legendX = MARGIN.left + plotWidth + 12;
		parts.push(
			`<path d="${path}" fill="none" stroke="${color}" stroke-width="1.6"${dash}/>`,
			`<line x1="${legendX}" y1="${legendY}" x2="${legendX + 20}" y2="${legendY}" stroke="${color}" stroke-width="2"${dash}/>`,
			`<text x="${legendX + 26}" y="${legendY + 4}">${escapeXml(series.name)}</text>`,
		);
	});
	parts.push("</svg>");
	return `${parts.join("\n")}\n`;
}

/** A distribution as cumulative points (value, percent at or below it), thinned to ~200 points. */
export function cumulative(values: readonly number[]): [number, number][] {
	const sorted = [...values].sort((a, b) => a - b);
	const step = Math.max(1, Math.floor(sorted.length / 200));
	const points: [number, number][] = [];
	for (let index = 0; index < sorted.length; index += step) {
		points.push([sorted[index] as number, ((index + 1) / sorted.length) * 100]);
	}
	const last = sorted.at(-1);
	if (last !== undefined) points.push([last, 100]);
	return points;
}
