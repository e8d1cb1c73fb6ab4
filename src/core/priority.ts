// Priority classes a caller may ask for (x-priority), from most to least important.
export type Priority = "critical" | "high" | "normal" | "low";

export const PRIORITIES: readonly Priority[] = ["critical", "high", "normal", "low"];

/** Priority classes, 0 (critical) to 3 (low): PRIORITIES' order. */
export const CLASS_COUNT = PRIORITIES.length;
