import { useQuery } from "@tanstack/react-query";
import { ErrorNote, NoSite, useDocumentTitle } from "../components/ui";
import { IntegrationForm } from "../publishing/IntegrationForm";
import { QueueCard } from "../publishing/QueueCard";
import { publishingQueries } from "../publishing/queries";
import { SettingsForm } from "../publishing/SettingsForm";
import { useSession } from "../session";

export function PublishingPage() {
  useDocumentTitle("Publishing");
  const { siteId, sites } = useSession();
  if (siteId === null) return <NoSite />;
  const timezone = sites.find((s) => s.id === siteId)?.timezone ?? "UTC";
  return <Publishing key={siteId} siteId={siteId} timezone={timezone} />;
}

function Publishing({ siteId, timezone }: { siteId: number; timezone: string }) {
  const settings = useQuery(publishingQueries.settings(siteId));
  const integration = useQuery(publishingQueries.integration(siteId));
  return (
    <>
      <h1>Publishing</h1>
      <QueueCard siteId={siteId} autoPublish={settings.data?.auto_publish_enabled} />
      <ErrorNote error={settings.error ?? integration.error} />
      <section className="grid2 publishing">
        {settings.data && (
          <SettingsForm siteId={siteId} settings={settings.data} timezone={timezone} />
        )}
        {integration.data && <IntegrationForm siteId={siteId} integration={integration.data} />}
      </section>
    </>
  );
}
