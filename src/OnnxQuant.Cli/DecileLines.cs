namespace OnnxQuant.Cli;

/// <summary>
/// Progress as plain lines ("  label: done/total"), at most one per tenth of the work: what a redirected stderr (a log,
/// a pipeline) gets instead of a bar. `smooth`/`awq`'s pass stages and `eval`'s windows both print through it.
/// </summary>
internal sealed class DecileLines(TextWriter error)
{
    private string? _label;
    private int _lastDecile = -1;

    public void Report(string label, int done, int total)
    {
        if (label != _label)
            (_label, _lastDecile) = (label, -1);
        int decile = total == 0 ? 10 : done * 10 / total;
        if (decile == _lastDecile)
            return;
        _lastDecile = decile;
        error.WriteLine($"  {label}: {done}/{total}");
    }
}
