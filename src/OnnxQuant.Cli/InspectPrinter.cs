using OnnxQuant.Analysis;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Renders a <see cref="ModelSummary"/> for a terminal.</summary>
public static class InspectPrinter
{
    public static void Print(IAnsiConsole console, ModelSummary s)
    {
        var files = s.Files;
        string data = files.ExternalData.Count == 0
            ? "no external data"
            : $"model {Format.Bytes(files.ModelBytes)} + external data {Format.Bytes(files.ExternalDataBytes)} in {files.ExternalData.Count} file(s)";
        console.MarkupLine($"[bold]{Markup.Escape(files.Path ?? "(in memory)")}[/]  {Format.Bytes(files.TotalBytes)} ({Markup.Escape(data)})");
        string opsets = string.Join(", ", s.Opsets.Select(o => $"{o.Domain} {o.Version}"));
        console.WriteLine($"ir_version {s.IrVersion}, producer {(s.Producer.Length > 0 ? s.Producer : "(none)")}, opsets {opsets}");
        console.WriteLine();

        var io = new Table().Border(TableBorder.Simple).AddColumns("", "name", "dtype", "shape");
        foreach (var v in s.Inputs) io.AddRow("input", Markup.Escape(v.Name), v.Dtype, Markup.Escape(v.ShapeText));
        foreach (var v in s.Outputs) io.AddRow("output", Markup.Escape(v.Name), v.Dtype, Markup.Escape(v.ShapeText));
        console.Write(io);

        console.WriteLine($"{s.NodeCount} nodes: " + string.Join(", ", s.Ops.Select(o => $"{o.Op} {o.Count}")));
        console.WriteLine();

        var parameters = new Table().Border(TableBorder.Simple).AddColumns("dtype", "tensors", "parameters", "bytes");
        foreach (var p in s.Parameters)
            parameters.AddRow(p.Dtype, p.Tensors.ToString(), Format.Count(p.Elements), Format.Bytes(p.Bytes));
        parameters.AddRow("[bold]total[/]", s.Parameters.Sum(p => p.Tensors).ToString(), Format.Count(s.ParameterCount), Format.Bytes(s.ParameterBytes));
        console.Write(parameters);

        if (s.Linears.Count > 0)
        {
            var linears = new Table().Border(TableBorder.Simple).Title("MatMul and Gemm nodes")
                .AddColumns("node", "op", "verdict", "K x N", "weight", "bias", "activation from");
            foreach (var l in s.Linears)
                linears.AddRow(Markup.Escape(l.Scope is null ? l.Name : $"{l.Scope}/{l.Name}"), l.Op,
                    Markup.Escape(l.Reason == KeepReason.None ? "quantize" : "keep: " + KeepReasons.Short(l.Reason)),
                    l.K > 0 ? $"{l.K} x {l.N}" : "-", l.WeightVia is null ? l.WeightDtype : Markup.Escape($"{l.WeightDtype} via {l.WeightVia}"),
                    l.Bias ? "yes" : "no", Markup.Escape(ProducerText(l)));
            console.Write(linears);
        }
        console.WriteLine(SummaryLine(s));
        foreach (var e in s.Embeddings)
            console.WriteLine($"token embedding {e.Table} [{e.Rows}x{e.Width}]: {e.Form}{(e.BlockSize is { } b ? $", blocks of {b}" : "")}, {Format.Bytes(e.Bytes)}");
        if (s.Provenance.Count > 0)
        {
            var provenance = new Table().Border(TableBorder.Simple).Title("provenance (metadata_props)").AddColumns("key", "value");
            foreach (var entry in s.Provenance)
                provenance.AddRow(Markup.Escape(entry.Key), Markup.Escape(ProvenanceText(entry)));
            console.Write(provenance);
        }
    }

    // The recipe as its pass chain and linear assignment (the full text is in --json); other entries as they are.
    private static string ProvenanceText(MetadataEntry entry)
    {
        if (entry.Key != OnnxQuant.Recipes.ModelProvenance.RecipeKey)
            return entry.Value;
        try
        {
            var recipe = OnnxQuant.Recipes.RecipeFile.Parse(entry.Value, "metadata");
            var overrides = recipe.Linears.Overrides.Select(o => $"{o.Match} -> {OnnxQuant.Recipes.RecipeFile.Name(o.Scheme)}");
            return $"{recipe.Pipeline()}; default {OnnxQuant.Recipes.RecipeFile.Name(recipe.Linears.Default)}" +
                (recipe.Linears.Overrides.Count > 0 ? $"; {string.Join(", ", overrides)}" : "");
        }
        catch (OnnxQuantException)
        {
            return entry.Value;
        }
    }

    // "LayerNorm input_layernorm, gamma ln.weight": the kind, the node and the norm's gamma (beta and more are in --json).
    private static string ProducerText(LinearSummary l)
    {
        if (l.ProducerKind is not { } kind)
            return "-";
        if (l.ProducerNode is null)
            return $"{kind} (graph input)";
        string node = l.ProducerOutput > 0 ? $"{kind} {l.ProducerNode} output {l.ProducerOutput}" : $"{kind} {l.ProducerNode}";
        return l.Gamma is null ? node : $"{node}, gamma {l.Gamma}";
    }

    /// <summary>"36 MatMul + 1 Gemm quantizable, 12 kept (12 computed weight), 22.7M parameters".</summary>
    public static string SummaryLine(ModelSummary s)
    {
        var parts = new List<string>();
        if (s.QuantizableMatMuls > 0) parts.Add($"{s.QuantizableMatMuls} MatMul");
        if (s.QuantizableGemms > 0) parts.Add($"{s.QuantizableGemms} Gemm");
        string linears = parts.Count == 0 ? "no MatMul/Gemm to quantize with the default options (nothing to quantize)" : string.Join(" + ", parts) + " quantizable";
        string kept = s.Kept.Count == 0 ? "" : $", {s.Kept.Sum(k => k.Count)} kept ({string.Join(", ", s.Kept.Select(k => $"{k.Count} {k.Why}"))})";
        return $"{linears}{kept}, {Format.Count(s.ParameterCount)} parameters";
    }
}
