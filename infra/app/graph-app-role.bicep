// Tenant-wide mailbox access (mailboxAccessMode = 'tenantWide' only): grants the managed identity
// the Microsoft Graph application role Calendars.ReadWrite, which reaches EVERY mailbox in the
// tenant. main.bicep deploys this module only in that mode; the recommended 'scoped' mode creates
// no Entra grant and limits access with Exchange RBAC for Applications (infra/exchange/).
// Never combine the two: Entra and Exchange grants add up, so this grant would void the scope.
// The deployer needs AppRoleAssignment.ReadWrite.All and Application.Read.All in Entra
// (for example the Privileged Role Administrator role).
// Sources: learn.microsoft.com/graph/templates (Microsoft.Graph/appRoleAssignedTo@v1.0,
// Microsoft.Graph/servicePrincipals@v1.0); role id from the Graph permissions reference.
extension microsoftGraphV1

@description('Principal (object) id of the Function App identity.')
param principalId string

// Microsoft Graph's well-known application id.
var graphAppId = '00000003-0000-0000-c000-000000000000'
// Calendars.ReadWrite (application permission) on Microsoft Graph.
var calendarsReadWriteRoleId = 'ef54d2bf-783f-4e0f-bca1-3210c0444d99'

resource graphServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource calendarsReadWrite 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: graphServicePrincipal.id
  appRoleId: calendarsReadWriteRoleId
}

output appRoleAssignmentId string = calendarsReadWrite.id
