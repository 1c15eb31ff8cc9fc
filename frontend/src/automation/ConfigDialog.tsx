import { useQuery } from "@tanstack/react-query";
import { Dialog } from "radix-ui";
import { useState, type FormEvent, type ReactNode } from "react";
import { Link } from "react-router-dom";
import type { Schemas } from "../api/client";
import { ErrorNote, FieldError, fieldProblems } from "../components/ui";
import { formatDate } from "../lib/format";
import { limitHint } from "../lib/progress";
import {
  STAGE_ENABLED,
  STAGE_LIMITS,
  STAGE_NUMBERS,
  stageItems,
  stageName,
  type StageNumber,
} from "./format";
import { automationQueries, useSaveConfig } from "./queries";
import { weekdayName } from "./ScheduleNote";

type Config = Schemas["ConfigOut"];
type Update = Schemas["ConfigUpdate"];
type Field = keyof Update & keyof Config;

const BATCH_FIELDS = {
  1: "stage_1_batch_size",
  2: "stage_2_batch_size",
  3: "stage_3_batch_size",
  4: "stage_4_batch_size",
  5: "stage_5_batch_size",
  6: "stage_6_batch_size",
} as const satisfies Record<number, Field>;

const DELAY_FIELDS = [
  ["within_stage_delay", "Delay between batches (seconds)"],
  ["between_stage_delay", "Delay between stages (seconds)"],
] as const satisfies readonly (readonly [Field, string])[];
const AI_FIELDS = [
  ["ai_concurrency", "AI calls in flight per run"],
  ["max_in_article_images", "In-article images per article"],
] as const satisfies readonly (readonly [Field, string])[];

type NumberField =
  | (typeof BATCH_FIELDS)[keyof typeof BATCH_FIELDS]
  | (typeof STAGE_LIMITS)[StageNumber]
  | (typeof DELAY_FIELDS)[number][0]
  | (typeof AI_FIELDS)[number][0]
  | "max_credits_per_run"
  | "monthly_day"
  | "weekly_day";
type BoolField = (typeof STAGE_ENABLED)[StageNumber] | "enabled";

const NUMBER_FIELDS: NumberField[] = [
  ...Object.values(BATCH_FIELDS),
  ...Object.values(STAGE_LIMITS),
  ...DELAY_FIELDS.map(([f]) => f),
  ...AI_FIELDS.map(([f]) => f),
  "max_credits_per_run",
  "monthly_day",
  "weekly_day",
];
const BOOL_FIELDS: BoolField[] = [...Object.values(STAGE_ENABLED), "enabled"];
const FREQUENCIES: Schemas["Frequency"][] = ["daily", "weekly", "monthly"];

/** Every field's label for a person, for the messages that name fields. */
const LABELS: Record<string, string> = {
  enabled: "Run on a schedule",
  frequency: "Frequency",
  scheduled_time: "Time",
  weekly_day: "Day of the week",
  monthly_day: "Day of the month",
  max_credits_per_run: "Credit cap per run",
  notification_url: "Notification URL",
  notification_secret: "Notification signing secret",
  ...Object.fromEntries(DELAY_FIELDS),
  ...Object.fromEntries(AI_FIELDS),
  ...Object.fromEntries(
    STAGE_NUMBERS.flatMap((n) => [
      [STAGE_ENABLED[n], `Stage ${n} on/off`],
      [STAGE_LIMITS[n], `Per-run limit of stage ${n}`],
      ...(n < 7
        ? [[BATCH_FIELDS[n as keyof typeof BATCH_FIELDS], `Batch size of stage ${n}`]]
        : []),
    ]),
  ),
};
const labelOf = (field: string) => LABELS[field];

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
    scheduled_time: config.scheduled_time.slice(0, 5),
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

type Props = { siteId: number; open: boolean; onClose: () => void; timeZone?: string };

/** Every field of the site's automation config, in a modal dialog (full screen on a phone). */
export function ConfigDialog({ siteId, open, onClose, timeZone }: Props) {
  const config = useQuery({ ...automationQueries.config(siteId), enabled: open });
  return (
    <Dialog.Root open={open}>
      <Dialog.Portal>
        <Dialog.Overlay className="overlay" />
        {config.data ? (
          <ConfigForm siteId={siteId} config={config.data} onDone={onClose} timeZone={timeZone} />
        ) : (
          <Dialog.Content
            className="dialog config-dialog"
            aria-describedby={undefined}
            onEscapeKeyDown={onClose}
            onInteractOutside={onClose}
          >
            <Dialog.Title>Automation configuration</Dialog.Title>
            <ErrorNote error={config.error} />
            {!config.error && <p className="hint">Loading…</p>}
            <button type="button" className="secondary" onClick={onClose}>
              Close
            </button>
          </Dialog.Content>
        )}
      </Dialog.Portal>
    </Dialog.Root>
  );
}

function ConfigForm({
  siteId,
  config,
  onDone,
  timeZone,
}: {
  siteId: number;
  config: Config;
  onDone: () => void;
  timeZone?: string;
}) {
  const [form, setForm] = useState<Form>(() => formOf(config));
  const [unreadable, setUnreadable] = useState<NumberField[]>([]);
  const [confirming, setConfirming] = useState(false);
  const overview = useQuery(automationQueries.overview(siteId));
  const save = useSaveConfig(siteId);
  const problems = fieldProblems(save.error);
  for (const field of unreadable) problems.set(field, "enter a number");
  const dirty = JSON.stringify(form) !== JSON.stringify(formOf(config));

  // Closing with unsaved edits asks first (Escape, a click beside the dialog, or Close).
  function requestClose(event?: Event) {
    event?.preventDefault();
    if (dirty) setConfirming(true);
    else onDone();
  }

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

  const edit = (update: (f: Form) => Form) => {
    setConfirming(false);
    setForm(update);
  };
  const setNumber = (field: NumberField, value: string) =>
    edit((f) => ({ ...f, numbers: { ...f.numbers, [field]: value } }));
  const setBool = (field: BoolField, value: boolean) =>
    edit((f) => ({ ...f, bools: { ...f.bools, [field]: value } }));

  const numberInput = (field: NumberField, label: string, extra?: ReactNode) => (
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
      <FieldError problems={problems} field={field} />
      {extra}
    </label>
  );
  const pendingOf = (n: number) => overview.data?.stages.find((s) => s.number === n)?.pending;

  return (
    <Dialog.Content
      className="dialog config-dialog"
      aria-describedby={undefined}
      onEscapeKeyDown={requestClose}
      onInteractOutside={requestClose}
    >
      <Dialog.Title>Automation configuration</Dialog.Title>
      {/* noValidate: the API is the validator, and its 400 names the field. */}
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
                if (picked) edit((f) => ({ ...f, frequency: picked }));
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
              onChange={(e) => edit((f) => ({ ...f, scheduled_time: e.target.value }))}
            />
            <FieldError problems={problems} field="scheduled_time" />
          </label>
          {form.frequency === "weekly" && (
            <label>
              Day of the week
              <select
                value={form.numbers.weekly_day}
                onChange={(e) => setNumber("weekly_day", e.target.value)}
              >
                {[0, 1, 2, 3, 4, 5, 6].map((i) => (
                  <option key={i} value={String(i)}>
                    {weekdayName(i)}
                  </option>
                ))}
              </select>
              <FieldError problems={problems} field="weekly_day" />
            </label>
          )}
          {form.frequency === "monthly" && numberInput("monthly_day", "Day of the month")}
          <p className="hint wide" data-testid="config-next-run">
            Next scheduled run (as saved):{" "}
            {config.enabled && config.next_run_at
              ? `${formatDate(config.next_run_at, timeZone)} (${timeZone ?? "site"} time)`
              : "none, the schedule is off"}
            {config.last_run_at && <> · last run: {formatDate(config.last_run_at, timeZone)}</>}
          </p>
        </fieldset>

        <fieldset className="stages">
          <legend>Stages and per-run limits (0 = no limit)</legend>
          {STAGE_NUMBERS.map((n) => {
            const pending = pendingOf(n);
            const limitField = STAGE_LIMITS[n];
            return (
              <div key={n} className="stage-row" data-testid={`config-stage-${n}`}>
                <p className="stage-row-name">
                  {n}. {overview.data?.stages.find((s) => s.number === n)?.name ?? stageName(n)}
                </p>
                <label className="check">
                  <input
                    type="checkbox"
                    aria-label={`Stage ${n} enabled`}
                    checked={form.bools[STAGE_ENABLED[n]]}
                    onChange={(e) => setBool(STAGE_ENABLED[n], e.target.checked)}
                  />
                  On
                </label>
                {n === 7 ? (
                  <span className="hint">Review: no batches</span>
                ) : (
                  <label>
                    Batch size
                    <input
                      type="number"
                      inputMode="numeric"
                      aria-label={`Stage ${n} batch size`}
                      value={form.numbers[BATCH_FIELDS[n]]}
                      aria-invalid={problems.has(BATCH_FIELDS[n]) || undefined}
                      onChange={(e) => setNumber(BATCH_FIELDS[n], e.target.value)}
                    />
                    <FieldError problems={problems} field={BATCH_FIELDS[n]} />
                  </label>
                )}
                <label>
                  Per run, at most
                  <input
                    type="number"
                    inputMode="numeric"
                    aria-label={`Stage ${n} per-run limit`}
                    value={form.numbers[limitField]}
                    aria-invalid={problems.has(limitField) || undefined}
                    onChange={(e) => setNumber(limitField, e.target.value)}
                  />
                  <FieldError problems={problems} field={limitField} />
                </label>
                <p className="hint stage-row-hint" data-testid={`config-stage-${n}-hint`}>
                  {pending === undefined
                    ? "…"
                    : pending === 0
                      ? "Current pending: none"
                      : `Current pending: ${stageItems(n, pending)} · ${limitHint(pending, form.numbers[limitField])}`}
                </p>
              </div>
            );
          })}
        </fieldset>

        <fieldset>
          <legend>Credits and AI</legend>
          {numberInput(
            "max_credits_per_run",
            "Credit cap per run (0 = no cap)",
            <span className="hint">
              Divided between the AI functions by the{" "}
              <Link to={`/sites/${siteId}/settings`}>AI budget allocation</Link>.
            </span>,
          )}
          {AI_FIELDS.map(([field, label]) => numberInput(field, label))}
        </fieldset>

        <fieldset>
          <legend>Delays</legend>
          {DELAY_FIELDS.map(([field, label]) => numberInput(field, label))}
        </fieldset>

        <fieldset>
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
              onChange={(e) => edit((f) => ({ ...f, notification_url: e.target.value }))}
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
              onChange={(e) => edit((f) => ({ ...f, notification_secret: e.target.value }))}
            />
            <FieldError problems={problems} field="notification_secret" />
          </label>
        </fieldset>

        <ErrorNote
          labelOf={labelOf}
          error={
            save.error ??
            (unreadable.length > 0
              ? `Enter a number in: ${unreadable.map((f) => LABELS[f] ?? f).join(", ")}`
              : null)
          }
        />
        {confirming && (
          <div className="confirm-bar" role="alertdialog" aria-label="Unsaved changes">
            <p>You have unsaved changes. Close and lose them?</p>
            <div className="actions">
              <button type="button" className="secondary" onClick={() => setConfirming(false)}>
                Keep editing
              </button>
              <button type="button" className="danger" onClick={onDone}>
                Discard changes
              </button>
            </div>
          </div>
        )}
        <div className="actions dialog-actions">
          <button type="submit" disabled={save.isPending}>
            Save configuration
          </button>
          <button type="button" className="secondary" onClick={() => requestClose()}>
            Close
          </button>
          {dirty && <span className="hint">Unsaved changes</span>}
        </div>
      </form>
    </Dialog.Content>
  );
}
