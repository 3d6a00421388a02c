<#
.SYNOPSIS
    Lets the cancel-handler managed identity use Calendars.ReadWrite on the organizers' mailboxes
    only, with Exchange Online RBAC for Applications (mailboxAccessMode = scoped).

.DESCRIPTION
    1. Registers the managed identity's enterprise application in Exchange Online
       (New-ServicePrincipal).
    2. Creates a management scope that selects the organizers' mailboxes: members of a
       mail-enabled group, a custom attribute value, or your own recipient filter
       (New-ManagementScope -RecipientRestrictionFilter). Alternatively an Entra
       administrative unit (-AdministrativeUnitId), which needs no scope.
    3. Assigns the role "Application Calendars.ReadWrite" to the identity on that scope
       (New-ManagementRoleAssignment -App ... -CustomResourceScope ...).

    Each step is skipped when its object already exists, so the script can be re-run.
    Supports -WhatIf and -Confirm. Needs no secrets: you sign in interactively.

    Do NOT also grant the Entra app role Calendars.ReadWrite (mailboxAccessMode = tenantWide):
    Entra and Exchange grants add up, and the tenant-wide grant would void this scope.

    Changes take effect after 30 minutes to 2 hours (Exchange caches app permissions).
    Verify with Test-ScopedCalendarAccess.ps1.

.PARAMETER ClientId
    Client (application) id of the user-assigned managed identity:
    `azd env get-value MANAGED_IDENTITY_CLIENT_ID`.

.PARAMETER ObjectId
    Object id of the identity's enterprise application (service principal), which for a managed
    identity is its principal id: `azd env get-value MANAGED_IDENTITY_PRINCIPAL_ID`.

.EXAMPLE
    # Organizers are the members of a mail-enabled security group:
    ./Grant-ScopedCalendarAccess.ps1 -ClientId $clientId -ObjectId $objectId `
        -OrganizerGroup 'meeting-organizers@contoso.com' -WhatIf

.EXAMPLE
    # Organizers carry CustomAttribute5 = 'cancel-handler' on their mailboxes:
    ./Grant-ScopedCalendarAccess.ps1 -ClientId $clientId -ObjectId $objectId `
        -CustomAttributeName CustomAttribute5 -CustomAttributeValue 'cancel-handler'
#>
[CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High', DefaultParameterSetName = 'Group')]
param(
    [Parameter(Mandatory = $true)]
    [guid] $ClientId,

    [Parameter(Mandatory = $true)]
    [guid] $ObjectId,

    # Name shown for the identity in Exchange Online.
    [string] $DisplayName = 'cancel-handler',

    # Name of the management scope to create or reuse.
    [string] $ScopeName = 'cancel-handler organizers',

    # Mail-enabled (security) group whose direct members are the organizers. Nested groups are
    # not expanded by the MemberOfGroup filter.
    [Parameter(Mandatory = $true, ParameterSetName = 'Group')]
    [string] $OrganizerGroup,

    [Parameter(Mandatory = $true, ParameterSetName = 'CustomAttribute')]
    [ValidatePattern('^CustomAttribute([1-9]|1[0-5])$')]
    [string] $CustomAttributeName,

    [Parameter(Mandatory = $true, ParameterSetName = 'CustomAttribute')]
    [string] $CustomAttributeValue,

    # Any OPATH recipient filter, e.g. "Department -eq 'Events'".
    [Parameter(Mandatory = $true, ParameterSetName = 'Filter')]
    [string] $RecipientRestrictionFilter,

    # Object id of an Entra administrative unit holding the organizers.
    [Parameter(Mandatory = $true, ParameterSetName = 'AdministrativeUnit')]
    [guid] $AdministrativeUnitId
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$role = 'Application Calendars.ReadWrite'

if (-not (Get-Command Get-ServicePrincipal -ErrorAction SilentlyContinue)) {
    throw 'Connect to Exchange Online first: Install-Module ExchangeOnlineManagement; Connect-ExchangeOnline'
}

# 1. The identity as an Exchange service principal.
$servicePrincipal = Get-ServicePrincipal -Identity $ClientId.ToString() -ErrorAction SilentlyContinue
if ($servicePrincipal) {
    Write-Host "Service principal exists: $($servicePrincipal.DisplayName) ($ClientId)"
} elseif ($PSCmdlet.ShouldProcess("AppId $ClientId / ObjectId $ObjectId", 'New-ServicePrincipal')) {
    $servicePrincipal = New-ServicePrincipal -AppId $ClientId -ObjectId $ObjectId -DisplayName $DisplayName
}

# 2. Which mailboxes: a management scope (or an administrative unit).
$scopeArguments = @{}
if ($PSCmdlet.ParameterSetName -eq 'AdministrativeUnit') {
    $scopeArguments['RecipientAdministrativeUnitScope'] = $AdministrativeUnitId.ToString()
} else {
    $filter = switch ($PSCmdlet.ParameterSetName) {
        'Group' {
            $groupDn = (Get-Group -Identity $OrganizerGroup).DistinguishedName
            "MemberOfGroup -eq '$groupDn'"
        }
        'CustomAttribute' { "$CustomAttributeName -eq '$CustomAttributeValue'" }
        'Filter' { $RecipientRestrictionFilter }
    }
    $scope = Get-ManagementScope -Identity $ScopeName -ErrorAction SilentlyContinue
    if ($scope) {
        if ($scope.RecipientFilter -ne $filter) {
            Write-Warning "Scope '$ScopeName' exists with filter [$($scope.RecipientFilter)], not [$filter]. Fix it with Set-ManagementScope or choose another -ScopeName."
        }
    } elseif ($PSCmdlet.ShouldProcess("$ScopeName : $filter", 'New-ManagementScope')) {
        $scope = New-ManagementScope -Name $ScopeName -RecipientRestrictionFilter $filter
    }
    $scopeArguments['CustomResourceScope'] = $ScopeName
}

# 3. The role on that scope.
# Get-ManagementRoleAssignment has no -App filter: match the assignee on the client side.
$assigneeNames = @($ClientId.ToString(), $ObjectId.ToString(), $DisplayName)
$existing = Get-ManagementRoleAssignment -Role $role -ErrorAction SilentlyContinue |
    Where-Object { $assigneeNames -contains $_.RoleAssigneeName }
if ($existing) {
    Write-Host "Role assignment exists: $($existing.Name)"
} elseif ($PSCmdlet.ShouldProcess("$DisplayName on $($scopeArguments.Values)", "New-ManagementRoleAssignment -Role '$role'")) {
    New-ManagementRoleAssignment -App $ObjectId.ToString() -Role $role @scopeArguments | Format-List Name, Role, RoleAssigneeName, CustomResourceScope
}

Write-Host 'Done. Allow 30 minutes to 2 hours, then run Test-ScopedCalendarAccess.ps1.'
