import { useState, type FormEvent } from "react";
import type { Schemas } from "../api/client";
import { ErrorNote, FieldError, fieldProblems } from "../components/ui";
import { useSaveSettings, type Settings } from "./queries";

type Update = Schemas["PublishingSettingsUpdate"];
type Mode = Schemas["SchedulingMode"];
type Weekday = Settings["publish_days"][number];

const MODES = [
  ["time_slots", "Time slots", "at the times below, on the publish days"],
  ["stagger", "Stagger", "one every few minutes within a window of the publish days"],
  ["immediate", "Immediate", "as soon as an article is approved, any day"],
] as const satisfies readonly (readonly [Mode, string, string])[];
const DAYS = [
  ["mon", "Monday"],
  ["tue", "Tuesday"],
  ["wed", "Wednesday"],
  ["thu", "Thursday"],
  ["fri", "Friday"],
  ["sat", "Saturday"],
  ["sun", "Sunday"],
] as const satisfies readonly (readonly [Weekday, string])[];
const TARGET_FIELDS = [
  ["daily_publish_target", "Daily target"],
  ["weekly_publish_target", "Weekly target"],
  ["monthly_publish_target", "Monthly target"],
] as const;
// A slot added to the list starts here; the person edits it.
const NEW_SLOT = "12:00";

type NumberField =
  | (typeof TARGET_FIELDS)[number][0]
  | "stagger_interval_minutes"
  | "queue_limit";
const NUMBER_FIELDS: NumberField[] = [
  ...TARGET_FIELDS.map(([f]) => f),
  "stagger_interval_minutes",
  "queue_limit",
];

/** The form keeps what the inputs hold: numbers as typed, so the API judges them. */
type Form = {
  auto_approval_enabled: boolean;
  auto_publish_enabled: boolean;
  scheduling_mode: Mode;
  publish_days: Weekday[];
  publish_time_slots: string[];
  stagger_start_time: string;
  stagger_end_time: string;
  numbers: Record<NumberField, string>;
};

function formOf(settings: Settings): Form {
  return {
    auto_approval_enabled: settings.auto_approval_enabled,
    auto_publish_enabled: settings.auto_publish_enabled,
    scheduling_mode: settings.scheduling_mode,
    publish_days: settings.publish_days,
    publish_time_slots: settings.publish_time_slots,
    stagger_start_time: settings.stagger_start_time,
    stagger_end_time: settings.stagger_end_time,
    numbers: Object.fromEntries(NUMBER_FIELDS.map((f) => [f, String(settings[f])])) as Record<
      NumberField,
      string
    >,
  };
}

/** The update body, or the fields that hold no number at all. Only the chosen mode's fields
 * are sent: the hidden ones keep their saved values for when that mode is chosen again. */
function bodyOf(form: Form): { body: Update } | { unreadable: NumberField[] } {
  const body: Update = {
    auto_approval_enabled: form.auto_approval_enabled,
    auto_publish_enabled: form.auto_publish_enabled,
    scheduling_mode: form.scheduling_mode,
  };
  const numbers: NumberField[] = [...TARGET_FIELDS.map(([f]) => f), "queue_limit"];
  if (form.scheduling_mode === "time_slots") {
    body.publish_days = form.publish_days;
    body.publish_time_slots = form.publish_time_slots;
  } else if (form.scheduling_mode === "stagger") {
    body.publish_days = form.publish_days;
    body.stagger_start_time = form.stagger_start_time;
    body.stagger_end_time = form.stagger_end_time;
    numbers.push("stagger_interval_minutes");
  }
  const unreadable: NumberField[] = [];
  for (const field of numbers) {
    const text = form.numbers[field].trim();
    const value = Number(text);
    if (text === "" || !Number.isFinite(value)) unreadable.push(field);
    else body[field] = value;
  }
  return unreadable.length > 0 ? { unreadable } : { body };
}

type Props = { siteId: number; settings: Settings; timezone: string };

const LABELS: Record<string, string> = {
  ...Object.fromEntries(TARGET_FIELDS),
  stagger_interval_minutes: "Minutes between articles",
  queue_limit: "Queue limit",
  stagger_start_time: "Start time",
  stagger_end_time: "End time",
  publish_days: "Publish days",
  publish_time_slots: "Publish times",
  scheduling_mode: "Scheduling mode",
};
/** A field's label; a time slot's is its place in the list ("publish_time_slots.0"). */
function labelOf(field: string): string | undefined {
  const slot = /^publish_time_slots\.(\d+)$/.exec(field);
  return slot ? `Time slot ${Number(slot[1]) + 1}` : LABELS[field];
}

// A slot (UTC) as the site's wall clock: "Mon 24 Nov, 09:00".
function inZone(instant: string, timezone: string): string {
  return new Date(instant).toLocaleString("en-GB", {
    timeZone: timezone,
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** How the site's content is approved and scheduled (SPEC §9). */
export function SettingsForm({ siteId, settings, timezone }: Props) {
  const [form, setForm] = useState<Form>(() => formOf(settings));
  const [unreadable, setUnreadable] = useState<NumberField[]>([]);
  const save = useSaveSettings(siteId);
  const problems = fieldProblems(save.error);
  for (const field of unreadable) problems.set(field, "enter a number");

  const change = (update: (f: Form) => Form) => {
    // A "saved" note would be stale once the form changes again.
    if (save.isSuccess) save.reset();
    setForm(update);
  };
  const setNumber = (field: NumberField, value: string) =>
    change((f) => ({ ...f, numbers: { ...f.numbers, [field]: value } }));
  const toggleDay = (day: Weekday, on: boolean) =>
    change((f) => ({
      ...f,
      publish_days: on ? [...f.publish_days, day] : f.publish_days.filter((d) => d !== day),
    }));
  const setSlot = (index: number, value: string) =>
    change((f) => ({
      ...f,
      publish_time_slots: f.publish_time_slots.map((s, i) => (i === index ? value : s)),
    }));

  function submit(event: FormEvent) {
    event.preventDefault();
    const built = bodyOf(form);
    if ("unreadable" in built) {
      setUnreadable(built.unreadable);
      return;
    }
    setUnreadable([]);
    // The API sorts the slots and drops repeated ones: show what it kept.
    save.mutate(built.body, { onSuccess: (saved) => setForm(formOf(saved)) });
  }

  const numberInput = (field: NumberField, label: string) => (
    <label key={field}>
      {label}
      <input
        type="number"
        inputMode="numeric"
        value={form.numbers[field]}
        aria-invalid={problems.has(field) || undefined}
        onChange={(e) => setNumber(field, e.target.value)}
      />
      <FieldError problems={problems} field={field} />
    </label>
  );
  const timeInput = (field: "stagger_start_time" | "stagger_end_time", label: string) => (
    <label>
      {label}
      <input
        type="time"
        value={form[field]}
        aria-invalid={problems.has(field) || undefined}
        onChange={(e) => change((f) => ({ ...f, [field]: e.target.value }))}
      />
      <FieldError problems={problems} field={field} />
    </label>
  );
  const mode = form.scheduling_mode;

  return (
    // noValidate: the API is the validator, and its 400 names the field.
    <form
      noValidate
      onSubmit={submit}
      className="card config-form"
      aria-label="Publishing settings"
    >
      <h2>Settings</h2>
      <fieldset>
        <legend>Automation</legend>
        <label className="check">
          <input
            type="checkbox"
            checked={form.auto_approval_enabled}
            onChange={(e) => change((f) => ({ ...f, auto_approval_enabled: e.target.checked }))}
          />
          Auto-approve content in review
        </label>
        <label className="check">
          <input
            type="checkbox"
            checked={form.auto_publish_enabled}
            onChange={(e) => change((f) => ({ ...f, auto_publish_enabled: e.target.checked }))}
          />
          Auto-publish approved content
        </label>
      </fieldset>

      <fieldset className="modes">
        <legend>Scheduling mode</legend>
        {MODES.map(([value, label, hint]) => (
          <label key={value} className="check">
            <input
              type="radio"
              name="scheduling_mode"
              value={value}
              checked={mode === value}
              onChange={() => change((f) => ({ ...f, scheduling_mode: value }))}
            />
            {label}
            <span className="hint">— {hint}</span>
          </label>
        ))}
        <p className="hint wide">Times are in the site's time zone, {timezone}.</p>
        <p className="hint wide" data-testid="next-slots">
          Next free slots (as saved):{" "}
          {(settings.next_slots ?? []).length > 0
            ? (settings.next_slots ?? []).map((slot) => inZone(slot, timezone)).join(" · ")
            : "none in the next 90 days"}
        </p>
      </fieldset>

      {mode !== "immediate" && (
        <fieldset>
          <legend>Publish days</legend>
          {DAYS.map(([day, label]) => (
            <label key={day} className="check">
              <input
                type="checkbox"
                checked={form.publish_days.includes(day)}
                onChange={(e) => toggleDay(day, e.target.checked)}
              />
              {label}
            </label>
          ))}
          <FieldError problems={problems} field="publish_days" />
        </fieldset>
      )}

      {mode === "time_slots" && (
        <fieldset>
          <legend>Publish times</legend>
          {form.publish_time_slots.map((slot, i) => (
            // Index keys: the inputs are controlled, and a slot has no identity but its place.
            <div key={i} className="slot">
              <input
                type="time"
                aria-label={`Time slot ${i + 1}`}
                value={slot}
                aria-invalid={problems.has(`publish_time_slots.${i}`) || undefined}
                onChange={(e) => setSlot(i, e.target.value)}
              />
              <button
                type="button"
                className="secondary"
                aria-label={`Remove slot ${i + 1}`}
                onClick={() =>
                  change((f) => ({
                    ...f,
                    publish_time_slots: f.publish_time_slots.filter((_, j) => j !== i),
                  }))
                }
              >
                Remove
              </button>
              <FieldError problems={problems} field={`publish_time_slots.${i}`} />
            </div>
          ))}
          <div>
            <button
              type="button"
              className="secondary"
              onClick={() =>
                change((f) => ({ ...f, publish_time_slots: [...f.publish_time_slots, NEW_SLOT] }))
              }
            >
              Add a time slot
            </button>
          </div>
          <FieldError problems={problems} field="publish_time_slots" />
        </fieldset>
      )}

      {mode === "stagger" && (
        <fieldset>
          <legend>Stagger window</legend>
          {timeInput("stagger_start_time", "Start time")}
          {timeInput("stagger_end_time", "End time")}
          {numberInput("stagger_interval_minutes", "Minutes between articles")}
        </fieldset>
      )}

      <fieldset>
        <legend>Targets and queue</legend>
        {TARGET_FIELDS.map(([field, label]) => numberInput(field, label))}
        {numberInput("queue_limit", "Queue limit")}
        <p className="hint wide">
          Targets are for your records; the queue limit caps how many articles wait scheduled at
          once (0 stops scheduling).
        </p>
      </fieldset>

      <ErrorNote
        labelOf={labelOf}
        error={
          save.error ??
          (unreadable.length > 0
            ? `Enter a number in: ${unreadable.map((f) => labelOf(f) ?? f).join(", ")}`
            : null)
        }
      />
      <div className="actions">
        <button type="submit" disabled={save.isPending}>
          Save settings
        </button>
        {save.isSuccess && (
          <span role="status" className="hint">
            Settings saved.
          </span>
        )}
      </div>
    </form>
  );
}
