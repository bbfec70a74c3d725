using System.Runtime.InteropServices;

namespace OnnxQuant.Cli;

/// <summary>
/// Turns the first Ctrl-C (SIGINT) or SIGTERM into a cancellation that passes, calibration and saving observe, so the
/// command unwinds, deletes its temporary files and exits with <see cref="ExitCode.Interrupted"/>. A second signal is
/// left to the default action (immediate exit) for a user who does not want to wait for the unwinding.
/// </summary>
public sealed class InterruptSignals : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly List<PosixSignalRegistration> _registrations = new();

    public InterruptSignals()
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try
            {
                _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
            }
            catch (PlatformNotSupportedException)
            {
                // SIGTERM has no equivalent on some platforms; Ctrl-C alone still works there.
            }
        }
    }

    public CancellationToken Token => _source.Token;

    private void OnSignal(PosixSignalContext context)
    {
        if (_source.IsCancellationRequested)
            return; // second signal: let the default action end the process
        context.Cancel = true;
        _source.Cancel();
    }

    public void Dispose()
    {
        foreach (var r in _registrations)
            r.Dispose();
        _source.Dispose();
    }
}
