// Alert rules that mail the operator at once: a message dead-lettered to a poison queue, an invoice that
// failed or stayed unsettled past SETTLE_DEADLINE_HOURS, an invoice whose line items do not add up (mismatch), an
// unbilled snapshot that failed, the refresh token nearing expiry (or rejected), and
// function failures. The log rules match the events and lines written by src/app/handlers.ts and src/auth/.

param location string
param tags object
param namePrefix string
param appInsightsId string

@description('Where alerts are mailed. Empty = the action group exists but notifies nobody.')
param alertEmail string = ''

// Each query ends in `items = sum(itemCount)` and the rule alerts on its Total: a row the Functions host sampled
// stands for itemCount items, so counting rows would undercount. The events and the warning/error lines these read are
// sent unsampled (src/telemetry/azure-monitor.ts; docs/operations.md, "Sampling"), as customEvents and traces; the
// traces branch also reads lines written while that path is off, and the host's own poison line.
var logRules = [
  {
    name: 'poison-queue'
    displayName: 'Queue message moved to a poison queue'
    severity: 1
    description: 'A sync or export message failed MAX_DEQUEUE_COUNT times and went to invoice-sync-poison or lineitem-export-poison. Read the last error with `csp-invoice-sync status`, fix, then `resync`.'
    query: '''
traces
| where severityLevel >= 2
| where message has "goes to poison" or message has "Moving message to queue"
| summarize items = sum(itemCount)
'''
  }
  {
    name: 'invoice-failed-or-unsettled'
    displayName: 'Invoice failed, or unsettled past its deadline'
    severity: 2
    description: 'An invoice reached state failed, or its v2 line items stayed "no data yet" past SETTLE_DEADLINE_HOURS (unsettled).'
    query: '''
union
    (customEvents
    | where name == "PartUnsettled" or (name == "InvoiceStateChanged" and tostring(customDimensions.state) in ("failed", "unsettled"))),
    (traces
    | where message startswith "event:PartUnsettled" or (message startswith "event:InvoiceStateChanged"
        and (message has '"state":"failed"' or message has '"state":"unsettled"')))
| summarize items = sum(itemCount)
'''
  }
  {
    name: 'reconciliation-mismatch'
    displayName: 'Invoice line items do not add up to its totalCharges'
    severity: 2
    description: 'An invoice whose billing line items differ from its totalCharges by more than RECONCILIATION_TOLERANCE is in state mismatch (never complete). Later timer runs re-check it (1 h, 2 h ... 24 h apart, for FAILED_RETRY_DAYS); `csp-invoice-sync status` shows both sums and the difference.'
    query: '''
union
    (customEvents | where name == "ReconciliationMismatch"),
    (traces | where message startswith "event:ReconciliationMismatch")
| summarize items = sum(itemCount)
'''
  }
  {
    name: 'unbilled-snapshot-failed'
    displayName: 'Unbilled snapshot failed'
    severity: 3
    description: 'A daily unbilled snapshot (usage or billing of a currency and month) gave up or had no data in time; it has no manifest.json. The next UNBILLED_SCHEDULE run of the day retries it; `csp-invoice-sync status` shows its last error.'
    query: '''
union
    (customEvents | where name == "UnbilledSnapshotFailed"),
    (traces | where message startswith "event:UnbilledSnapshotFailed")
| summarize items = sum(itemCount)
'''
  }
  {
    name: 'refresh-token-expiry'
    displayName: 'App+User refresh token nearing expiry or rejected'
    severity: 1
    description: 'The refresh token is older than REFRESH_TOKEN_WARN_DAYS or was rejected (invalid_grant, MFA expired, wrong client kind). Run the consent command again before PDFs stop downloading.'
    query: '''
traces
| where severityLevel >= 2
| where message has "refresh token" or message has "RefreshToken" or message has "invalid_grant" or message has "AADSTS50078"
    or message has "AADSTS700025" or message has "AADSTS7000218"
| summarize items = sum(itemCount)
'''
  }
]

// API version: learn.microsoft.com/es-es/azure/templates/microsoft.insights/2022-04-01/actiongroups (2022-04-01, newest stable; 2024-10-01-preview is preview)
resource actionGroup 'Microsoft.Insights/actionGroups@2022-04-01' = {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'cspsync'
    enabled: true
    emailReceivers: empty(alertEmail)
      ? []
      : [
          {
            name: 'operator'
            emailAddress: alertEmail
            useCommonAlertSchema: true
          }
        ]
  }
}

// API version: pulumi.com/registry/packages/azure-native/api-docs/monitor/scheduledqueryrule lists 2023-12-01 as the newest stable
// (learn.microsoft.com/azure/templates/microsoft.insights/2021-08-01/scheduledqueryrules has the same criteria shape)
resource logAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in logRules: {
    name: '${namePrefix}-${rule.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        appInsightsId
      ]
      evaluationFrequency: 'PT15M'
      windowSize: 'PT15M'
      autoMitigate: false
      criteria: {
        allOf: [
          {
            query: rule.query
            // The sum of itemCount the query returns, not its row count (see logRules).
            timeAggregation: 'Total'
            metricMeasureColumn: 'items'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

// API version: learn.microsoft.com/azure/templates/microsoft.insights/2018-03-01/metricalerts (2018-03-01, newest stable; 2024-03-01-preview is preview)
resource functionFailures 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-function-failures'
  location: 'global'
  tags: tags
  properties: {
    description: 'A function invocation failed (each failure is retried, but a steady rate means something is broken).'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'failedRequests'
          metricNamespace: 'microsoft.insights/components'
          metricName: 'requests/failed'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Count'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

output actionGroupId string = actionGroup.id
