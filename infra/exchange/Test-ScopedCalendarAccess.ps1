<#
.SYNOPSIS
    Verifies the cancel-handler identity's mailbox reach: in scope for each organizer mailbox,
    out of scope for every other mailbox given.

.DESCRIPTION
    RBAC for Applications: Test-ServicePrincipalAuthorization reports, per role, whether the
    mailbox is in scope. With -LegacyPolicy, checks an Application Access Policy instead
    (Test-ApplicationAccessPolicy). Read-only. Exits with code 1 when an expectation fails.
    Results can lag changes by 30 minutes to 2 hours.

.EXAMPLE
    ./Test-ScopedCalendarAccess.ps1 -ClientId $clientId `
        -InScopeMailbox organizer@contoso.com -OutOfScopeMailbox ceo@contoso.com
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [guid] $ClientId,

    # Mailboxes the function must reach (organizers).
    [Parameter(Mandatory = $true)]
    [string[]] $InScopeMailbox,

    # Mailboxes it must not reach (at least one, to prove the scope restricts anything).
    [Parameter(Mandatory = $true)]
    [string[]] $OutOfScopeMailbox,

    [switch] $LegacyPolicy
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$role = 'Application Calendars.ReadWrite'
$failures = 0

function Test-Reach([string] $Mailbox) {
    if ($LegacyPolicy) {
        return (Test-ApplicationAccessPolicy -Identity $Mailbox -AppId $ClientId.ToString()).AccessCheckResult -eq 'Granted'
    }
    $results = Test-ServicePrincipalAuthorization -Identity $ClientId.ToString() -Resource $Mailbox
    # InScope comes back as a boolean or as text ("True", "False", "Not Run"). Any non-empty
    # string is true in PowerShell, so only an explicit comparison tells "False" from True.
    $inScope = @($results | Where-Object { $_.RoleName -eq $role -and [string]$_.InScope -eq 'True' })
    return $inScope.Count -gt 0
}

foreach ($mailbox in $InScopeMailbox) {
    $reached = Test-Reach $mailbox
    Write-Host ("{0,-40} expected IN scope : {1}" -f $mailbox, $(if ($reached) { 'ok' } else { 'NOT IN SCOPE' }))
    if (-not $reached) { $failures++ }
}
foreach ($mailbox in $OutOfScopeMailbox) {
    $reached = Test-Reach $mailbox
    Write-Host ("{0,-40} expected OUT of scope: {1}" -f $mailbox, $(if ($reached) { 'REACHABLE' } else { 'ok' }))
    if ($reached) { $failures++ }
}

if ($failures) {
    Write-Warning "$failures mailbox(es) not as expected. Changes can take 30 minutes to 2 hours; if an out-of-scope mailbox is reachable, check that no tenant-wide Entra grant exists (docs/deploy.md)."
    exit 1
}
Write-Host 'Mailbox access is limited as expected.'
