using System.Globalization;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Report;
using OnnxQuant.Statistics;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>What `calibrate` tells at the end; also its --json document.</summary>
public sealed record CalibrationSummary(
    string Model, string? Output, string? Report, string Fingerprint, int Samples, int SequenceLength, string Data, string Tokenizer,
    string? Device, int? Runs, int? Sessions, double? ElapsedSeconds, double? TokensPerSecond, int TensorCount, IReadOnlyList<TensorSummary> Tensors)
{
    public static CalibrationSummary Create(string model, string? output, string? report, CalibrationStats stats, CalibrationResult? result, int top)
    {
        var tensors = OutlierSummary.Rank(stats).Take(top).Select(o =>
        {
            var t = stats.Get(o.Tensor)!;
            return new TensorSummary(o.Tensor, o.Channels, t.TokenCount, t.Min, t.Max, o.Median, o.Ratio,
                o.Top.Select(c => new ChannelSummary(c.Channel, c.AbsMax, c.Ratio)).ToList());
        }).ToList();
        return new CalibrationSummary(model, output, report, stats.ModelFingerprint, stats.Info.Samples, stats.Info.SequenceLength,
            stats.Info.Data, stats.Info.Tokenizer, result?.Device, result?.Runs, result?.Sessions, result?.Elapsed.TotalSeconds, result?.TokensPerSecond,
            stats.Tensors.Count, tensors);
    }

    public static void Print(IAnsiConsole console, CalibrationSummary s)
    {
        var inv = CultureInfo.InvariantCulture;
        string how = s.Device is null ? "" : string.Create(inv, $" on {s.Device} in {s.ElapsedSeconds:0.0} s ({s.TokensPerSecond:0} tokens/s{(s.Runs > 1 ? $", {s.Runs} runs" : "")}{(s.Sessions > 1 ? $", block by block in {s.Sessions} sessions" : "")})");
        console.MarkupLineInterpolated($"[bold]{s.Model}[/]: {s.TensorCount} activation tensors, {s.Samples} samples x {s.SequenceLength} tokens of {s.Data} ({s.Tokenizer}){how}");
        if (s.Output is not null)
            console.MarkupLineInterpolated($"statistics written to [bold]{s.Output}[/]");
        if (s.Report is not null)
            console.MarkupLineInterpolated($"report drawn to [bold]{s.Report}[/]");
        var table = new Table().Border(TableBorder.Simple).Title("top outlier channels (max |x| over the median channel's)");
        table.AddColumn("tensor");
        table.AddColumn(new TableColumn("channels").RightAligned());
        table.AddColumn(new TableColumn("range").RightAligned());
        table.AddColumn(new TableColumn("median max|x|").RightAligned());
        table.AddColumn("top channels: max|x| (max/median)");
        foreach (var t in s.Tensors)
            table.AddRow(
                Markup.Escape(t.Name),
                t.Channels.ToString(inv),
                string.Create(inv, $"[{t.Min:0.##}, {t.Max:0.##}]").Replace("[", "[[").Replace("]", "]]"),
                t.MedianAbsMax.ToString("0.###", inv),
                string.Join("  ", t.TopChannels.Select(c => string.Create(inv, $"{c.Channel}: {c.AbsMax:0.##} ({c.Ratio:0.0}x)"))));
        console.Write(table);
    }
}

public sealed record TensorSummary(string Name, int Channels, long Tokens, float Min, float Max, float MedianAbsMax, float MaxOverMedian, IReadOnlyList<ChannelSummary> TopChannels);

public sealed record ChannelSummary(int Channel, float AbsMax, float Ratio);
