<#
.SYNOPSIS
    Fallback only: restricts the tenant-wide Graph grant to one mail-enabled security group with
    an Application Access Policy (the older mechanism, superseded by RBAC for Applications).

.DESCRIPTION
    Unlike RBAC for Applications, an Application Access Policy does not grant anything: it
    narrows an existing Entra grant. Use it only together with mailboxAccessMode = tenantWide (or
    the manual Graph app role assignment in docs/deploy.md), and only where RBAC for
    Applications cannot be used. Takes up to 30 minutes (often longer) to apply. Supports -WhatIf.
    Verify with: ./Test-ScopedCalendarAccess.ps1 -LegacyPolicy ...

.EXAMPLE
    ./Grant-LegacyApplicationAccessPolicy.ps1 -ClientId $clientId `
        -PolicyScopeGroup 'meeting-organizers@contoso.com' -WhatIf
#>
[CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
param(
    [Parameter(Mandatory = $true)]
    [guid] $ClientId,

    # Mail-enabled security group of the organizers (e-mail address or identity).
    [Parameter(Mandatory = $true)]
    [string] $PolicyScopeGroup,

    [string] $Description = 'cancel-handler: calendar access limited to meeting organizers'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

if (-not (Get-Command New-ApplicationAccessPolicy -ErrorAction SilentlyContinue)) {
    throw 'Connect to Exchange Online first: Connect-ExchangeOnline'
}

$existing = Get-ApplicationAccessPolicy | Where-Object { $_.AppId -contains $ClientId.ToString() }
if ($existing) {
    Write-Host "An access policy for $ClientId exists already:"
    $existing | Format-List ScopeName, AccessRight, Description
    return
}
if ($PSCmdlet.ShouldProcess("AppId $ClientId -> $PolicyScopeGroup", 'New-ApplicationAccessPolicy -AccessRight RestrictAccess')) {
    New-ApplicationAccessPolicy -AppId $ClientId.ToString() -PolicyScopeGroupId $PolicyScopeGroup `
        -AccessRight RestrictAccess -Description $Description
}
