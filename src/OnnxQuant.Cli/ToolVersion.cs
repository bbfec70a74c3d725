using System.Reflection;

namespace OnnxQuant.Cli;

/// <summary>The tool's version: the one in Directory.Build.props, stamped into the assembly at build time.</summary>
public static class ToolVersion
{
    /// <summary>"0.4.0" (the informational version without a source-revision suffix).</summary>
    public static string Text { get; } = Read();

    private static string Read()
    {
        string? version = typeof(ToolVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (string.IsNullOrEmpty(version))
            return typeof(ToolVersion).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
        int plus = version.IndexOf('+');
        return plus < 0 ? version : version[..plus];
    }
}
