// Budget windows in a tenant's time zone: which local day and month an instant falls in, and the
// instant each resets (local midnight, the 1st at local midnight), across DST changes. Pure.

export interface BudgetWindows {
	/** Local date, YYYY-MM-DD: the day window's key and the usage ledger's date. */
	day: string;
	/** Local month, YYYY-MM. */
	month: string;
	dayResetMs: number;
	monthResetMs: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
	let formatter = formatters.get(timeZone);
	if (!formatter) {
		formatter = new Intl.DateTimeFormat("en-US", {
			timeZone,
			hourCycle: "h23",
			year: "numeric",
			month: "2-digit",
			day: "2-digit",
			hour: "2-digit",
			minute: "2-digit",
			second: "2-digit",
		});
		formatters.set(timeZone, formatter);
	}
	return formatter;
}

interface LocalTime {
	year: number;
	month: number;
	day: number;
	/** The local wall time read as if it were UTC, in ms. */
	wallMs: number;
}

function localTime(nowMs: number, timeZone: string): LocalTime {
	const parts: Record<string, number> = {};
	for (const part of formatterFor(timeZone).formatToParts(nowMs)) {
		if (part.type !== "literal") parts[part.type] = Number(part.value);
	}
	const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts;
	const wallMs = Date.UTC(year, month - 1, day, hour, minute, second) + (nowMs % 1000);
	return { year, month, day, wallMs };
}

/**
 * The first instant whose local wall time is at or after local midnight of (year, month, day):
 * the UTC instant of that midnight, or, where a DST change skips midnight, the first local time
 * after it.
 */
export function localMidnightMs(
	year: number,
	month: number,
	day: number,
	timeZone: string,
): number {
	const wallMidnight = Date.UTC(year, month - 1, day);
	let guess = wallMidnight;
	for (let i = 0; i < 3; i++) {
		const offset = localTime(guess, timeZone).wallMs - guess;
		guess = wallMidnight - offset;
	}
	// A skipped midnight: move forward until the local wall time has reached the day.
	while (localTime(guess, timeZone).wallMs < wallMidnight) guess += 15 * 60_000;
	while (localTime(guess - 60_000, timeZone).wallMs >= wallMidnight) guess -= 60_000;
	return guess;
}

const pad = (value: number) => String(value).padStart(2, "0");

/** The last day computed per time zone, so a day's requests compute its windows once. */
const lastDay = new Map<string, { startMs: number; windows: BudgetWindows }>();

export function budgetWindows(nowMs: number, timeZone: string): BudgetWindows {
	const last = lastDay.get(timeZone);
	if (last && nowMs >= last.startMs && nowMs < last.windows.dayResetMs) return last.windows;
	const windows = computeWindows(nowMs, timeZone);
	const [year, month, day] = windows.day.split("-").map(Number) as [number, number, number];
	lastDay.set(timeZone, { startMs: localMidnightMs(year, month, day, timeZone), windows });
	return windows;
}

function computeWindows(nowMs: number, timeZone: string): BudgetWindows {
	const local = localTime(nowMs, timeZone);
	const next = new Date(Date.UTC(local.year, local.month - 1, local.day + 1));
	const nextMonth = new Date(Date.UTC(local.year, local.month, 1));
	return {
		day: `${local.year}-${pad(local.month)}-${pad(local.day)}`,
		month: `${local.year}-${pad(local.month)}`,
		dayResetMs: localMidnightMs(
			next.getUTCFullYear(),
			next.getUTCMonth() + 1,
			next.getUTCDate(),
			timeZone,
		),
		monthResetMs: localMidnightMs(
			nextMonth.getUTCFullYear(),
			nextMonth.getUTCMonth() + 1,
			1,
			timeZone,
		),
	};
}
