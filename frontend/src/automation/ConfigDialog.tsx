import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import type { Schemas } from "../api/client";
import { ErrorNote, FieldError, fieldProblems } from "../components/ui";
import { automationQueries, useSaveConfig } from "./queries";

type Config = Schemas["ConfigOut"];
type Update = Schemas["ConfigUpdate"];
type Field = keyof Update & keyof Config;

const STAGES = [1, 2, 3, 4, 5, 6, 7] as const;
const BATCH_FIELDS = {
  1: "stage_1_batch_size",
  2: "stage_2_batch_size",
  3: "stage_3_batch_size",
  4: "stage_4_batch_size",
  5: "stage_5_batch_size",
  6: "stage_6_batch_size",
} as const satisfies Record<number, Field>;
const ENABLED_FIELDS = {
  1: "stage_1_enabled",
  2: "stage_2_enabled",
  3: "stage_3_enabled",
  4: "stage_4_enabled",
  5: "stage_5_enabled",
  6: "stage_6_enabled",
  7: "stage_7_enabled",
} as const satisfies Record<number, Field>;

const DELAY_FIELDS = [
  ["within_stage_delay", "Delay between batches (seconds)"],
  ["between_stage_delay", "Delay between stages (seconds)"],
] as const satisfies readonly (readonly [Field, string])[];
const LIMIT_FIELDS = [
  ["max_keywords_per_run", "Max keywords per run"],
  ["max_clusters_per_run", "Max clusters per run"],
  ["max_ideas_per_run", "Max ideas per run"],
  ["max_tasks_per_run", "Max tasks per run"],
  ["max_content_per_run", "Max content per run"],
  ["max_images_per_run", "Max images per run"],
  ["max_approvals_per_run", "Max approvals per run"],
  ["max_credits_per_run", "Max credits per run"],
] as const satisfies readonly (readonly [Field, string])[];
const AI_FIELDS = [
  ["ai_concurrency", "AI calls in flight per run"],
  ["max_in_article_images", "In-article images per article"],
] as const satisfies readonly (readonly [Field, string])[];

type NumberField =
  | (typeof BATCH_FIELDS)[keyof typeof BATCH_FIELDS]
  | (typeof DELAY_FIELDS)[number][0]
  | (typeof LIMIT_FIELDS)[number][0]
  | (typeof AI_FIELDS)[number][0]
  | "monthly_day"
  | "weekly_day";
type BoolField = (typeof ENABLED_FIELDS)[keyof typeof ENABLED_FIELDS] | "enabled";

const NUMBER_FIELDS: NumberField[] = [
  ...Object.values(BATCH_FIELDS),
  ...DELAY_FIELDS.map(([f]) => f),
  ...LIMIT_FIELDS.map(([f]) => f),
  ...AI_FIELDS.map(([f]) => f),
  "monthly_day",
  "weekly_day",
];
const BOOL_FIELDS: BoolField[] = [...Object.values(ENABLED_FIELDS), "enabled"];
const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const FREQUENCIES: Schemas["Frequency"][] = ["daily", "weekly", "monthly"];

/** The form keeps what the inputs hold: numbers as typed, so the API judges them. */
type Form = {
  numbers: Record<NumberField, string>;
  bools: Record<BoolField, boolean>;
  frequency: Schemas["Frequency"];
  scheduled_time: string;
  notification_url: string;
  /** Write-only: empty keeps the saved secret. */
  notification_secret: string;
};

function formOf(config: Config): Form {
  return {
    numbers: Object.fromEntries(NUMBER_FIELDS.map((f) => [f, String(config[f])])) as Record<
      NumberField,
      string
    >,
    bools: Object.fromEntries(BOOL_FIELDS.map((f) => [f, config[f]])) as Record<BoolField, boolean>,
    frequency: config.frequency,
    scheduled_time: config.scheduled_time,
    notification_url: config.notification_url ?? "",
    notification_secret: "",
  };
}

/** The update body, or the fields that hold no number at all. */
function bodyOf(form: Form, config: Config): { body: Update } | { unreadable: NumberField[] } {
  const body: Update = {
    frequency: form.frequency,
    scheduled_time: form.scheduled_time,
    ...form.bools,
  };
  // Sent only when changed: the API checks a URL it is given (DNS included) every time, and an
  // empty one stops notifications and forgets the secret.
  const url = form.notification_url.trim();
  if (url !== (config.notification_url ?? "")) body.notification_url = url;
  if (form.notification_secret !== "") body.notification_secret = form.notification_secret;
  const unreadable: NumberField[] = [];
  for (const field of NUMBER_FIELDS) {
    const text = form.numbers[field].trim();
    const value = Number(text);
    if (text === "" || !Number.isFinite(value)) unreadable.push(field);
    else body[field] = value;
  }
  return unreadable.length > 0 ? { unreadable } : { body };
}

type Props = { siteId: number; open: boolean; onClose: () => void };

/** Every field of the site's automation config, in a modal dialog. */
export function ConfigDialog({ siteId, open, onClose }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const config = useQuery(automationQueries.config(siteId));
  useEffect(() => {
    const el = dialog.current;
    if (!el) return;
    if (open && !el.open) el.showModal();
    if (!open && el.open) el.close();
  }, [open]);

  return (
    <dialog ref={dialog} className="config-dialog" aria-labelledby="config-title" onClose={onClose}>
      <h2 id="config-title">Automation configuration</h2>
      <ErrorNote error={config.error} />
      {open && config.data && <ConfigForm siteId={siteId} config={config.data} onDone={onClose} />}
    </dialog>
  );
}

function ConfigForm({
  siteId,
  config,
  onDone,
}: {
  siteId: number;
  config: Config;
  onDone: () => void;
}) {
  const [form, setForm] = useState<Form>(() => formOf(config));
  const [unreadable, setUnreadable] = useState<NumberField[]>([]);
  const save = useSaveConfig(siteId);
  const problems = fieldProblems(save.error);
  for (const field of unreadable) problems.set(field, "enter a number");

  function submit(event: FormEvent) {
    event.preventDefault();
    const built = bodyOf(form, config);
    if ("unreadable" in built) {
      setUnreadable(built.unreadable);
      return;
    }
    setUnreadable([]);
    save.mutate(built.body, { onSuccess: onDone });
  }

  const setNumber = (field: NumberField, value: string) =>
    setForm((f) => ({ ...f, numbers: { ...f.numbers, [field]: value } }));
  const setBool = (field: BoolField, value: boolean) =>
    setForm((f) => ({ ...f, bools: { ...f.bools, [field]: value } }));

  const numberInput = (field: NumberField, label: string) => (
    <label key={field}>
      {label}
      <input
        type="number"
        inputMode="decimal"
        name={field}
        value={form.numbers[field]}
        aria-invalid={problems.has(field) || undefined}
        onChange={(e) => setNumber(field, e.target.value)}
      />
      {problems.has(field) && (
        <span className="field-error">
          {field}: {problems.get(field)}
        </span>
      )}
    </label>
  );

  return (
    // noValidate: the API is the validator, and its 400 names the field.
    <form noValidate onSubmit={submit} className="config-form">
      <fieldset>
        <legend>Schedule</legend>
        <label className="check">
          <input
            type="checkbox"
            checked={form.bools.enabled}
            onChange={(e) => setBool("enabled", e.target.checked)}
          />
          Run on a schedule
        </label>
        <label>
          Frequency
          <select
            value={form.frequency}
            onChange={(e) => {
              const picked = FREQUENCIES.find((f) => f === e.target.value);
              if (picked) setForm((f) => ({ ...f, frequency: picked }));
            }}
          >
            {FREQUENCIES.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </label>
        <label>
          Time (site time zone)
          <input
            type="time"
            value={form.scheduled_time}
            aria-invalid={problems.has("scheduled_time") || undefined}
            onChange={(e) => setForm((f) => ({ ...f, scheduled_time: e.target.value }))}
          />
          {problems.has("scheduled_time") && (
            <span className="field-error">scheduled_time: {problems.get("scheduled_time")}</span>
          )}
        </label>
        <label>
          Day of the week (weekly)
          <select
            value={form.numbers.weekly_day}
            onChange={(e) => setNumber("weekly_day", e.target.value)}
          >
            {WEEKDAYS.map((day, i) => (
              <option key={day} value={String(i)}>
                {day}
              </option>
            ))}
          </select>
        </label>
        {numberInput("monthly_day", "Day of the month (monthly)")}
      </fieldset>

      <fieldset>
        <legend>Stages</legend>
        <table className="compact">
          <thead>
            <tr>
              <th>Stage</th>
              <th>Enabled</th>
              <th>Batch size</th>
            </tr>
          </thead>
          <tbody>
            {STAGES.map((n) => (
              <tr key={n}>
                <td>Stage {n}</td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Stage ${n} enabled`}
                    checked={form.bools[ENABLED_FIELDS[n]]}
                    onChange={(e) => setBool(ENABLED_FIELDS[n], e.target.checked)}
                  />
                </td>
                <td>
                  {n === 7 ? (
                    <span className="hint">review: no batches</span>
                  ) : (
                    <BatchInput
                      stage={n}
                      value={form.numbers[BATCH_FIELDS[n]]}
                      problem={problems.get(BATCH_FIELDS[n])}
                      onChange={(value) => setNumber(BATCH_FIELDS[n], value)}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </fieldset>

      <fieldset className="fields">
        <legend>Delays</legend>
        {DELAY_FIELDS.map(([field, label]) => numberInput(field, label))}
      </fieldset>

      <fieldset className="fields">
        <legend>Limits per run (0 = unlimited)</legend>
        {LIMIT_FIELDS.map(([field, label]) => numberInput(field, label))}
      </fieldset>

      <fieldset className="fields">
        <legend>AI</legend>
        {AI_FIELDS.map(([field, label]) => numberInput(field, label))}
      </fieldset>

      <fieldset className="fields">
        <legend>Notifications</legend>
        <p className="hint wide">
          A signed POST (HMAC-SHA256) when a run completes, fails or stops on its credit budget.
          Empty the URL to stop them.
        </p>
        <label>
          Notification URL
          <input
            type="url"
            value={form.notification_url}
            placeholder="https://example.com/hooks/automation"
            aria-invalid={problems.has("notification_url") || undefined}
            onChange={(e) => setForm((f) => ({ ...f, notification_url: e.target.value }))}
          />
          <FieldError problems={problems} field="notification_url" />
        </label>
        <label>
          Notification signing secret
          <input
            type="password"
            autoComplete="new-password"
            value={form.notification_secret}
            placeholder={
              config.notification_secret_set
                ? "set: leave empty to keep it"
                : "not set: 16 characters or more"
            }
            aria-invalid={problems.has("notification_secret") || undefined}
            onChange={(e) => setForm((f) => ({ ...f, notification_secret: e.target.value }))}
          />
          <FieldError problems={problems} field="notification_secret" />
        </label>
      </fieldset>

      <ErrorNote
        error={
          save.error ?? (unreadable.length > 0 ? `Not a number: ${unreadable.join(", ")}` : null)
        }
      />
      <div className="actions">
        <button type="submit" disabled={save.isPending}>
          Save configuration
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Close
        </button>
      </div>
    </form>
  );
}

type BatchProps = {
  stage: 1 | 2 | 3 | 4 | 5 | 6;
  value: string;
  problem?: string;
  onChange: (v: string) => void;
};

function BatchInput({ stage, value, problem, onChange }: BatchProps) {
  return (
    <>
      <input
        type="number"
        aria-label={`Stage ${stage} batch size`}
        value={value}
        aria-invalid={problem !== undefined || undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      {problem && (
        <span className="field-error">
          {BATCH_FIELDS[stage]}: {problem}
        </span>
      )}
    </>
  );
}
