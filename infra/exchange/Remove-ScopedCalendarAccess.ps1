<#
.SYNOPSIS
    Removes what Grant-ScopedCalendarAccess.ps1 created (after `azd down`, or to start over).
    Supports -WhatIf.
#>
[CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
param(
    [Parameter(Mandatory = $true)]
    [guid] $ClientId,

    [Parameter(Mandatory = $true)]
    [guid] $ObjectId,

    [string] $DisplayName = 'cancel-handler',

    [string] $ScopeName = 'cancel-handler organizers'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$assigneeNames = @($ClientId.ToString(), $ObjectId.ToString(), $DisplayName)
$assignments = Get-ManagementRoleAssignment -Role 'Application Calendars.ReadWrite' -ErrorAction SilentlyContinue |
    Where-Object { $assigneeNames -contains $_.RoleAssigneeName }
foreach ($assignment in @($assignments)) {
    if ($PSCmdlet.ShouldProcess($assignment.Name, 'Remove-ManagementRoleAssignment')) {
        Remove-ManagementRoleAssignment -Identity $assignment.Name -Confirm:$false
    }
}
if ((Get-ManagementScope -Identity $ScopeName -ErrorAction SilentlyContinue) -and
    $PSCmdlet.ShouldProcess($ScopeName, 'Remove-ManagementScope')) {
    Remove-ManagementScope -Identity $ScopeName -Confirm:$false
}
if ((Get-ServicePrincipal -Identity $ClientId.ToString() -ErrorAction SilentlyContinue) -and
    $PSCmdlet.ShouldProcess($ClientId, 'Remove-ServicePrincipal')) {
    Remove-ServicePrincipal -Identity $ClientId.ToString() -Confirm:$false
}
