variable "team" {
  type    = string
  default = "platform"
}

source "outscale-bsuvolume" "data" {
  bsu_volumes = [
    {
      device_name = "/dev/xvdf"
      tags = {
        Name   = "data-${var.team}"
        source = "{{ .SourceOMI }}"
      }
      volume_size = 4
      volume_type = "gp2"
    },
  ]
  communicator         = "ssh"
  custom_endpoint_oapi = "sim://state/sim"
  ssh_timeout          = "2m"
  ssh_username         = "outscale"
  vm_type              = "tinav5.c2r4p2"
  source_omi_filter {
    filters = {
      image-name = "Ubuntu-22.04-*"
    }
    most_recent = true
    owners      = ["Outscale"]
  }
}

build {
  sources = ["source.outscale-bsuvolume.data"]

  provisioner "shell" {
    inline = [
      "parted -s /dev/xvdf mklabel msdos mkpart primary 1MiB 100%",
      "while [ ! -b /dev/xvdf1 ]; do sleep 0.1; done",
      "mkfs.ext4 -q -L data /dev/xvdf1",
      "mkdir -p /mnt/data && mount /dev/xvdf1 /mnt/data",
      "echo 'seed data for ${var.team}' > /mnt/data/README",
      "umount /mnt/data",
    ]
  }
}
