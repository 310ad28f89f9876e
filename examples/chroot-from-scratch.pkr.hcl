variable "version" {
  type    = string
  default = "1.0.0"
}

source "outscale-chroot" "scratch" {
  custom_endpoint_oapi    = "sim://state/sim"
  from_scratch            = true
  omi_name                = "from-scratch-${var.version}"
  omi_virtualization_type = "hvm"
  post_mount_commands     = ["sh {{template_dir}}/files/userland.sh {{.MountPath}}"]
  pre_mount_commands = [
    "parted {{.Device}} mklabel msdos mkpart primary 1M 100% set 1 boot on print",
    "mkfs.ext4 {{.Device}}1",
  ]
  root_device_name = "xvdf"
  root_volume_size = 15
  tags = {
    Name    = "from-scratch"
    version = var.version
  }
  omi_block_device_mappings {
    delete_on_vm_deletion = true
    device_name           = "xvdf"
    volume_type           = "gp2"
  }
}

build {
  sources = ["source.outscale-chroot.scratch"]

  provisioner "shell" {
    inline = ["echo 'Built from nothing by osci (${var.version})' > /etc/motd"]
  }
}
