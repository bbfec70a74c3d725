using System.Diagnostics;
using System.Text.RegularExpressions;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Cli;

/// <summary>`diff --html` rendered by a real headless browser (Debian's chromium): the table rows and the chart are there. Shares the twin.</summary>
public sealed partial class NumericDiffTests
{
    [ArtifactFact(Artifact.Chromium)]
    public void ThePageRendersItsTableChartAndPanelsInChromium()
    {
        string chromium = RequiredArtifact.Chromium;
        _ = twin.None; // makes the --alpha none rewrite
        string page = Path.Combine(twin.Folder, "diff.html");

        var result = CliHarness.Run("diff", twin.Model, twin.Unsmoothed, "--html", page, "--samples", "2", "--device", "cpu");

        Assert.True(result.ExitCode == 0, result.Error);
        string html = File.ReadAllText(page);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));
        Assert.DoesNotContain("<script", html);
        int linears = CliHarness.Run("diff", twin.Model, twin.Unsmoothed, "--json").Json().GetProperty("linears").GetArrayLength();

        string dom = Chromium(chromium, "--dump-dom", "file://" + page);
        Assert.Equal(linears, RowPattern().Matches(dom).Count);
        Assert.Contains("id=\"error-chart\"", dom);
        Assert.Equal(linears, BarPattern().Matches(dom).Count);
        Assert.Contains("Per-channel max |x| of linear-layer inputs", dom);
        Assert.Contains("--exclude '/model/layers.0/", dom);

        string png = Path.Combine(twin.Folder, "diff.png"), blankPng = Path.Combine(twin.Folder, "blank.png");
        string blank = Path.Combine(twin.Folder, "blank.html");
        File.WriteAllText(blank, "<!DOCTYPE html><html><body></body></html>");
        Chromium(chromium, $"--screenshot={png}", "--window-size=1200,1600", "file://" + page);
        Chromium(chromium, $"--screenshot={blankPng}", "--window-size=1200,1600", "file://" + blank);
        long size = new FileInfo(png).Length, blankSize = new FileInfo(blankPng).Length;
        Assert.True(size > 10 * blankSize, $"screenshot {size} B, blank page {blankSize} B");
    }

    private static string Chromium(string chromium, params string[] args)
    {
        var info = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars" }.Concat(args))
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(120_000), "chromium did not finish in 120 s");
        Assert.True(process.ExitCode == 0, $"chromium exited {process.ExitCode}: {stderr.Result}");
        return stdout;
    }

    [GeneratedRegex("<tr class=\"linear-row")]
    private static partial Regex RowPattern();

    [GeneratedRegex("<rect class=\"bar\"")]
    private static partial Regex BarPattern();
}
