// "Status at a glance": an Application Insights workbook whose tiles run the saved queries of docs/queries, loaded
// from those files at compile time (one source: the workbook cannot drift from the queries operators paste).

param location string
param tags object
param appInsightsId string

@description('Name shown in the portal (Application Insights > Workbooks).')
param displayName string = 'CSP invoice sync: status'

var tiles = [
  {
    name: 'invoices-by-state'
    title: 'This month\'s invoices by state'
    query: loadTextContent('../../docs/queries/invoices-by-state.kql')
    visualization: 'barchart'
  }
  {
    name: 'failures'
    title: 'Failures and their reasons (7 days)'
    query: loadTextContent('../../docs/queries/failures.kql')
    visualization: 'table'
  }
  {
    name: 'daily-metrics'
    title: 'Rows, bytes and requests per day (30 days)'
    query: loadTextContent('../../docs/queries/daily-metrics.kql')
    visualization: 'table'
  }
  {
    name: 'pdf-age'
    title: 'PDF age at save against the 30-minute link limit'
    query: loadTextContent('../../docs/queries/pdf-age.kql')
    visualization: 'table'
  }
  {
    name: 'throttling-by-endpoint'
    title: 'Throttling by endpoint (24 hours)'
    query: loadTextContent('../../docs/queries/throttling-by-endpoint.kql')
    visualization: 'table'
  }
  {
    name: 'refresh-token-age'
    title: 'App+User refresh token: age and days left'
    query: loadTextContent('../../docs/queries/refresh-token-age.kql')
    visualization: 'table'
  }
  {
    name: 'unbilled-snapshots'
    title: 'Unbilled snapshots: the latest per month and currency, and failures (30 days)'
    query: loadTextContent('../../docs/queries/unbilled-snapshots.kql')
    visualization: 'table'
  }
]

var workbook = {
  version: 'Notebook/1.0'
  items: concat(
    [
      {
        type: 1
        name: 'intro'
        content: {
          json: '## CSP invoice sync\nEvery tile is a query from docs/queries in the repository. Counts add up `itemCount`, so they stay right when the Functions host samples its traces.'
        }
      }
    ],
    map(tiles, tile => {
      type: 3
      name: tile.name
      content: {
        version: 'KqlItem/1.0'
        title: tile.title
        query: tile.query
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: tile.visualization
      }
    })
  )
  fallbackResourceIds: [
    appInsightsId
  ]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

// API version: learn.microsoft.com/azure/templates/microsoft.insights/workbooks (2023-06-01, the newest stable)
resource statusWorkbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; this one is stable per resource group.
  name: guid(resourceGroup().id, appInsightsId, 'csp-invoice-sync-status')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    version: 'Notebook/1.0'
    serializedData: string(workbook)
  }
}

output id string = statusWorkbook.id
