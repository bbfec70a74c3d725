using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxQuant.Placement;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Renders a <see cref="PlacementReport"/>: inspect's --ep section, and smooth/awq's --target warning.</summary>
public static class PlacementPrinter
{
    public static void Print(IAnsiConsole console, PlacementReport report)
    {
        string ep = ExecutionProviders.Describe(report.Provider);
        console.WriteLine();
        if (report.Fallbacks.Count == 0)
            console.WriteLine($"{ep} (ONNX Runtime {report.OnnxRuntime}): every one of the {report.Judged} judged node(s) has a kernel.");
        else
        {
            var table = new Table().Border(TableBorder.Simple)
                .Title($"Nodes the {Markup.Escape(ep)} has no kernel for (ONNX Runtime {report.OnnxRuntime}): {report.Fallbacks.Count} of {report.Judged} judged")
                .AddColumns("node", "op", "problem", "why");
            foreach (var f in report.Fallbacks)
                table.AddRow(Markup.Escape(f.Node), Markup.Escape(f.Domain.Length == 0 ? f.Op : $"{f.Domain}.{f.Op}"), Problem(f.Problem), Markup.Escape(f.Detail));
            console.Write(table);
            console.WriteLine($"These run on another provider, with copies between devices: {report.FallbackSummary}.");
        }
        if (report.SlowPaths.Count > 0)
        {
            var slow = new Table().Border(TableBorder.Simple)
                .Title($"Nodes the {Markup.Escape(ep)} runs off its fast kernel: {report.SlowPaths.Count}")
                .AddColumns("node", "op", "why");
            foreach (var p in report.SlowPaths)
                slow.AddRow(Markup.Escape(p.Node), Markup.Escape(p.Op), Markup.Escape(p.Detail));
            console.Write(slow);
        }
        if (report.NotJudged.Count > 0)
            console.WriteLine($"Not judged (ops outside the kernel table): {string.Join(", ", report.NotJudged.Select(p => $"{p.Key} {p.Value}"))}.");
        console.WriteLine($"Source: {report.Source}.");
    }

    /// <summary>"warning: 36 node(s) would not run on the CUDA EP: QLinearMatMul x 36 (see `onnxquant inspect --ep cuda`)".</summary>
    public static string Warning(PlacementReport report, string key) =>
        $"warning: {report.Fallbacks.Count} node(s) of the quantized model would not run on the {ExecutionProviders.Describe(report.Provider)} and fall back to another provider: {report.FallbackSummary} (details: `onnxquant inspect OUTPUT --ep {key}`)";

    /// <summary>inspect's JSON document with a "placement" member.</summary>
    public static JsonNode WithPlacement<T>(T summary, PlacementReport placement)
    {
        var node = JsonSerializer.SerializeToNode(summary, JsonOutput.Options)!.AsObject();
        node["placement"] = JsonSerializer.SerializeToNode(placement, JsonOutput.Options);
        return node;
    }

    private static string Problem(PlacementProblem problem) => problem switch
    {
        PlacementProblem.NoKernel => "no kernel",
        PlacementProblem.OpsetNotRegistered => "opset",
        PlacementProblem.TypeNotRegistered => "type",
        _ => problem.ToString(),
    };
}
