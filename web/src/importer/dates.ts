// FHIR date, dateTime, instant and time values: real calendar values only. A port of
// kizuna/storage/fhir/dates.py with the same messages (the parity test compares them).
import { pyRepr } from "./json.ts";

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;
const DATETIME = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;
const TIME = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?$/;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : (MONTH_DAYS[month - 1] as number);
}

function calendar(year: string, month?: string, day?: string): string | null {
  const y = Number(year);
  if (y < 1) return "year 0000 does not exist";
  if (month === undefined) return null;
  const m = Number(month);
  if (!(m >= 1 && m <= 12)) return `month ${month} does not exist`;
  if (day === undefined) return null;
  const last = daysIn(y, m);
  const d = Number(day);
  if (!(d >= 1 && d <= last)) return `${year}-${month} has no day ${day} (it has ${last} days)`;
  return null;
}

function clock(hour: string, minute: string, second?: string): string | null {
  if (Number(hour) > 23) return `hour ${hour} does not exist`;
  if (Number(minute) > 59) return `minute ${minute} does not exist`;
  if (second !== undefined && Number(second) > 60) return `second ${second} does not exist`;
  return null;
}

function zone(z: string): string | null {
  if (z === "Z") return null;
  const hours = Number(z.slice(1, 3));
  const minutes = Number(z.slice(4, 6));
  if (minutes > 59 || hours > 14 || (hours === 14 && minutes)) return `timezone offset ${z} does not exist`;
  return null;
}

export function dateProblem(value: string): string | null {
  const m = DATE.exec(value);
  if (!m) return `${pyRepr(value)} is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)`;
  const problem = calendar(m[1] as string, m[2], m[3]);
  return problem ? `${pyRepr(value)} is not a calendar date: ${problem}` : null;
}

export function datetimeProblem(value: string, instant = false): string | null {
  const kind = instant ? "instant" : "dateTime";
  const m = DATETIME.exec(value);
  if (!m) return `${pyRepr(value)} is not a FHIR ${kind}`;
  const [, year, month, day, hour, minute, second, , tz] = m;
  let problem = calendar(year as string, month, day);
  if (problem) return `${pyRepr(value)} is not a calendar date: ${problem}`;
  if (instant && (second === undefined || tz === undefined)) {
    return `${pyRepr(value)} is not an instant: it needs date, time to the second and a timezone`;
  }
  if (hour === undefined) return null;
  if (second === undefined) return `${pyRepr(value)} has hours and minutes but no seconds (FHIR requires hh:mm:ss)`;
  problem = clock(hour, minute as string, second);
  if (problem) return `${pyRepr(value)} is not a valid time of day: ${problem}`;
  if (tz === undefined) return `${pyRepr(value)} has a time but no timezone (FHIR requires Z or ±hh:mm)`;
  problem = zone(tz);
  return problem ? `${pyRepr(value)}: ${problem}` : null;
}

export function timeProblem(value: string): string | null {
  const m = TIME.exec(value);
  if (!m) return `${pyRepr(value)} is not a FHIR time (hh:mm:ss)`;
  const problem = clock(m[1] as string, m[2] as string, m[3]);
  return problem ? `${pyRepr(value)} is not a valid time of day: ${problem}` : null;
}
